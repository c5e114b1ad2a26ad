export * from './environment';
export * from './morning-reset';
