import 'reflect-metadata';
import type { INestApplicationContext } from '@nestjs/common';
import pino from 'pino';
import { createApi, createWorker, prepareRuntime } from './bootstrap';
import { ConfigError, Role, loadConfig, readEnvironment } from './config';

/**
 * Starts a labgate process in the given role and stops it cleanly on SIGTERM/SIGINT: no new
 * requests, in-flight requests and running jobs finish, then Bull, the ORM and any embedded
 * servers close. A second signal, or the shutdown timeout, exits at once.
 */
export async function runProcess(forcedRole?: Role): Promise<void> {
  const log = pino({ name: 'labgate' });
  let config;
  try {
    config = loadConfig(readEnvironment());
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  if (forcedRole) {
    config = config.with({ role: forcedRole });
  }
  const runtime = await prepareRuntime(config);
  config = runtime.config;

  let app: INestApplicationContext;
  try {
    if (config.runsApi) {
      const api = await createApi(config);
      await api.listen(config.port, config.host);
      log.info(`api (${config.role}) listening on ${config.publicUrl}; docs at /docs`);
      app = api;
    } else {
      app = await createWorker(config);
      await app.init();
      log.info('worker started; no HTTP listener');
    }
  } catch (err) {
    await runtime.stop();
    throw err;
  }

  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    log.info(`${signal}: shutting down`);
    setTimeout(() => {
      log.error('shutdown timed out: exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs).unref();
    await app.close();
    await runtime.stop();
    process.exit(0);
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, (s) => void shutdown(s));
  }
}

export function runMain(forcedRole?: Role): void {
  runProcess(forcedRole).catch((err: unknown) => {
    process.stderr.write(`labgate failed to start: ${(err as Error).message ?? String(err)}\n`);
    process.exit(1);
  });
}
