export * from './app-config';
export * from './config.module';
export { ConfigError, loadConfig, readEnvironment, redactUrl } from './load-config';
export type { Environment } from './load-config';
