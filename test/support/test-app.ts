import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DynamicModule, INestApplicationContext } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { createApi, createWorker, startDevelopmentProvider } from '../../src/bootstrap';
import type { DevIdpClient } from '../../src/auth/dev-idp/dev-identity-provider';
import { AppConfig, Environment, loadConfig } from '../../src/config';
import { createTestDatabase, TestDatabase } from './database';
import { clearRedisPrefix } from './redis';
import { TEST_REDIS_URL } from './services';

export interface TestEnvironment {
  config: AppConfig;
  /** The test's own identity provider (a real oidc-provider), registered as OIDC_ISSUER. */
  idp: Awaited<ReturnType<typeof startDevelopmentProvider>>;
  database: TestDatabase;
  varDir: string;
  /** Drops the database, the Redis keys and the temp dir. */
  dispose(): Promise<void>;
}

/** A configuration of this test's own: fresh database, Redis prefix and VAR_DIR. */
export async function createTestEnvironment(
  env: Environment = {},
  options: { emptyDatabase?: boolean; extraClients?: DevIdpClient[] } = {},
): Promise<TestEnvironment> {
  const database = await createTestDatabase({ empty: options.emptyDatabase });
  const varDir = mkdtempSync(join(tmpdir(), 'labgate-test-'));
  const prefix = `lgtest-${randomBytes(4).toString('hex')}`;
  const base = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: database.url,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: prefix,
    VAR_DIR: varDir,
    DEV_IDP_PORT: '0',
    // No API-wide rate limits unless a test asks for them (test/ops/security.e2e-spec.ts).
    RATE_LIMIT_USER_PER_MINUTE: '0',
    RATE_LIMIT_IP_PER_MINUTE: '0',
    ...env,
  };
  // Registered like an institution's provider (explicit issuer and secret), so that no
  // development defaults apply: with no ADMIN_ENTITLEMENTS, nobody is admin.
  const idp = await startDevelopmentProvider(loadConfig(base), options.extraClients);
  const config = loadConfig({
    OIDC_ISSUER: idp.issuer,
    OIDC_CLIENT_SECRET: idp.clientSecret,
    ...base,
  });
  return {
    config,
    idp,
    database,
    varDir,
    async dispose() {
      await idp.stop();
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
  options: Parameters<typeof createTestEnvironment>[1] = {},
): Promise<TestApp> {
  const testEnv = await createTestEnvironment(env, options);
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
