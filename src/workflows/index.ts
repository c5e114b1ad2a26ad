export * from './environment';
export * from './morning-reset';
export * from './inventory';
