export * from './environment';
export * from './morning-reset';
export * from './inventory';
export * from './support-pod';
export * from './reconcile';
export * from './cluster';
