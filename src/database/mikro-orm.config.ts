import 'reflect-metadata';
import { loadConfig, readEnvironment } from '../config';
import { mikroOrmOptions } from './mikro-orm-options';

/**
 * Configuration for the `mikro-orm` CLI (migration:create, migration:check, migration:up).
 * It needs a reachable PostgreSQL: set DATABASE_URL.
 */
const config = loadConfig(readEnvironment());
if (!config.database.url) {
  throw new Error('DATABASE_URL must be set for the mikro-orm CLI (e.g. postgres://localhost/x)');
}
export default {
  ...mikroOrmOptions(config.database.url, 2),
  entities: ['./dist/src/**/*.entity.js'],
  entitiesTs: ['./src/**/*.entity.ts'],
};
