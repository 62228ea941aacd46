import { freePort, LabgateProcess } from '../../test/support/labgate-process';
import { TEST_REDIS_URL } from '../../test/support/services';
import type { TestEnvironment } from '../../test/support/test-app';
import type { Environment } from '../../src/config';
import type { Cleanup } from './cleanup';
import { waitForHttp } from './http';

/**
 * The API as its own process (ROLE=api) on a test environment, stopped by `cleanup`; resolves
 * once it answers /health/live (it migrates an empty database while it boots).
 */
export async function startApiProcess(
  env: TestEnvironment,
  servicesDir: string,
  cleanup: Cleanup,
  extra: Environment = {},
): Promise<{ api: LabgateProcess; url: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const api = new LabgateProcess('main', {
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    ROLE: 'api',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: env.database.url,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: env.config.redis.prefix,
    VAR_DIR: env.varDir,
    SERVICES_DIR: servicesDir,
    OIDC_ISSUER: env.idp.issuer,
    OIDC_CLIENT_SECRET: env.idp.clientSecret,
    DEV_IDP_PORT: '0',
    // The limiter stays in the request path (its Redis round trip is measured) but never
    // refuses: a load client would otherwise measure 429 answers.
    RATE_LIMIT_USER_PER_MINUTE: '1000000',
    RATE_LIMIT_IP_PER_MINUTE: '1000000',
    ...extra,
  });
  cleanup.add('API child process', async () => {
    // SIGTERM lets it finish in-flight requests; SIGKILL if it does not within 5 s.
    const kill = setTimeout(() => api.child.kill('SIGKILL'), 5000);
    await api.stop().finally(() => clearTimeout(kill));
  });
  let alive = true;
  void api.exited.then(() => (alive = false));
  await waitForHttp(`${url}/health/live`, 120_000, () => alive).catch((err: Error) => {
    throw new Error(`${err.message}\n${api.output}`);
  });
  return { api, url };
}

/**
 * A worker as its own process (ROLE=worker, `src/worker.ts`), stopped by `cleanup`. It is
 * ready once it serves its device: callers see that when their first job runs.
 */
export function startWorkerProcess(
  env: TestEnvironment,
  servicesDir: string,
  cleanup: Cleanup,
  extra: Environment = {},
): LabgateProcess {
  const worker = new LabgateProcess('worker', {
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    DATABASE_URL: env.database.url,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: env.config.redis.prefix,
    VAR_DIR: env.varDir,
    SERVICES_DIR: servicesDir,
    OIDC_ISSUER: env.idp.issuer,
    OIDC_CLIENT_SECRET: env.idp.clientSecret,
    ...extra,
  });
  let stopping = false;
  cleanup.add('worker child process', async () => {
    stopping = true;
    const kill = setTimeout(() => worker.child.kill('SIGKILL'), 5000);
    await worker.stop().finally(() => clearTimeout(kill));
  });
  // A worker that dies would leave the bench waiting for jobs that never run.
  void worker.exited.then((exit) => {
    if (!stopping) {
      process.stderr.write(`worker exited (${JSON.stringify(exit)}):\n${worker.output}\n`);
      void cleanup.run().finally(() => process.exit(1));
    }
  });
  return worker;
}
