import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DynamicModule, INestApplicationContext } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { createApi, createWorker } from '../../src/bootstrap';
import { AppConfig, Environment, loadConfig } from '../../src/config';
import { createTestDatabase, TestDatabase } from './database';
import { clearRedisPrefix } from './redis';
import { TEST_REDIS_URL } from './services';

export interface TestEnvironment {
  config: AppConfig;
  database: TestDatabase;
  varDir: string;
  /** Drops the database, the Redis keys and the temp dir. */
  dispose(): Promise<void>;
}

/** A configuration of this test's own: fresh database, Redis prefix and VAR_DIR. */
export async function createTestEnvironment(env: Environment = {}): Promise<TestEnvironment> {
  const database = await createTestDatabase();
  const varDir = mkdtempSync(join(tmpdir(), 'labgate-test-'));
  const prefix = `lgtest-${randomBytes(4).toString('hex')}`;
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: database.url,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: prefix,
    VAR_DIR: varDir,
    ...env,
  });
  return {
    config,
    database,
    varDir,
    async dispose() {
      await database.drop();
      await clearRedisPrefix(prefix);
      rmSync(varDir, { recursive: true, force: true });
    },
  };
}

export interface TestApp extends TestEnvironment {
  app: NestExpressApplication;
  close(): Promise<void>;
}

/**
 * The real API (the same `createApi` production uses) on its own database and Redis prefix.
 * `module` swaps in a test module that imports the app's, for the rare test route.
 */
export async function startTestApp(
  env: Environment = {},
  module?: (config: AppConfig) => DynamicModule,
): Promise<TestApp> {
  const testEnv = await createTestEnvironment(env);
  const app = await createApi(testEnv.config, module?.(testEnv.config));
  await app.init();
  return {
    ...testEnv,
    app,
    async close() {
      await app.close();
      await testEnv.dispose();
    },
  };
}

export async function startTestWorker(config: AppConfig): Promise<INestApplicationContext> {
  const worker = await createWorker(config);
  await worker.init();
  return worker;
}
