import { compileCheckout } from '../../test/support/compiled';
import { freePort, LabgateProcess } from '../../test/support/labgate-process';
import { TEST_REDIS_URL } from '../../test/support/services';
import type { TestEnvironment } from '../../test/support/test-app';
import type { Environment } from '../../src/config';
import type { Cleanup } from './cleanup';
import { waitForHttp } from './http';

/** Set by bench/run.ts: one compiled checkout for every bench of a run. */
export const COMPILED_ROOT_ENV = 'LABGATE_BENCH_COMPILED_ROOT';
/** Files of bench/ that run as programs of their own, compiled with the checkout. */
export const BENCH_PROGRAMS = ['bench/lib/bare-nest.ts'];

let compiled: Promise<string> | undefined;

/**
 * The compiled checkout the bench's processes run from (as production runs dist/, not
 * ts-node): bench/run.ts's, or one compiled now and removed by `cleanup`.
 */
export function compiledRoot(cleanup: Cleanup): Promise<string> {
  compiled ??= (async () => {
    const given = process.env[COMPILED_ROOT_ENV];
    if (given) {
      return given;
    }
    const checkout = await compileCheckout(BENCH_PROGRAMS);
    cleanup.add('compiled checkout', () => checkout.remove());
    return checkout.root;
  })();
  return compiled;
}

/** What every labgate process of a bench shares: the test environment's stores and IdP. */
function processEnvironment(env: TestEnvironment, servicesDir: string): Environment {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    DATABASE_URL: env.database.url,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: env.config.redis.prefix,
    VAR_DIR: env.varDir,
    SERVICES_DIR: servicesDir,
    OIDC_ISSUER: env.idp.issuer,
    OIDC_CLIENT_SECRET: env.idp.clientSecret,
  };
}

/**
 * The API as its own process (ROLE=api, compiled: see compiledRoot) on a test environment, stopped by `cleanup`; resolves
 * once it answers /health/live (it migrates an empty database while it boots).
 */
export async function startApiProcess(
  env: TestEnvironment,
  servicesDir: string,
  cleanup: Cleanup,
  extra: Environment = {},
): Promise<{ api: LabgateProcess; url: string }> {
  const root = await compiledRoot(cleanup);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const api = new LabgateProcess(
    'main',
    {
      ...processEnvironment(env, servicesDir),
      ROLE: 'api',
      HOST: '127.0.0.1',
      PORT: String(port),
      DEV_IDP_PORT: '0',
      // The limiter stays in the request path (its Redis round trip is measured) but never
      // refuses: a load client would otherwise measure 429 answers.
      RATE_LIMIT_USER_PER_MINUTE: '1000000',
      RATE_LIMIT_IP_PER_MINUTE: '1000000',
      ...extra,
    },
    root,
  );
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
 * A worker as its own process (ROLE=worker, `src/worker.ts`), stopped by `stop` or else by
 * `cleanup`. It is ready once it serves its device: callers see that when their first job
 * runs. Dying otherwise ends the bench (it would wait for jobs that never run).
 */
export async function startWorkerProcess(
  env: TestEnvironment,
  servicesDir: string,
  cleanup: Cleanup,
  extra: Environment = {},
): Promise<{ worker: LabgateProcess; stop: () => Promise<void> }> {
  const root = await compiledRoot(cleanup);
  const worker = new LabgateProcess(
    'worker',
    {
      ...processEnvironment(env, servicesDir),
      ...extra,
    },
    root,
  );
  let stopping = false;
  const stop = async () => {
    stopping = true;
    const kill = setTimeout(() => worker.child.kill('SIGKILL'), 5000);
    await worker.stop().finally(() => clearTimeout(kill));
  };
  cleanup.add('worker child process', stop);
  void worker.exited.then((exit) => {
    if (!stopping) {
      process.stderr.write(`worker exited (${JSON.stringify(exit)}):\n${worker.output}\n`);
      void cleanup.run().finally(() => process.exit(1));
    }
  });
  return { worker, stop };
}
