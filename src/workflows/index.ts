export * from './environment/definitions';
export * from './environment/workflow';
export * from './morning-reset';
export * from './inventory';
export * from './support-pod';
export * from './reconcile';
export * from './cluster';
export * from './savings-summary';
