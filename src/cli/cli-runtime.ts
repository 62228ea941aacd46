import { randomUUID } from 'node:crypto';
import type { DynamicModule, INestApplicationContext, LoggerService, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MikroORM, RequestContext } from '@mikro-orm/postgresql';
import { prepareRuntime, type Runtime } from '../bootstrap';
import type { RequestOrigin } from '../common/auth.decorators';
import { createValidationPipe } from '../common/validation';
import { AppConfig, loadConfig, readEnvironment } from '../config';

/** Where a command writes: results on stdout (for scripts), notes and logs on stderr. */
export interface CliIo {
  verbose: boolean;
  out(line: string): void;
  note(line: string): void;
}

export const processIo = (verbose: boolean): CliIo => ({
  verbose,
  out: (line) => process.stdout.write(`${line}\n`),
  note: (line) => process.stderr.write(`${line}\n`),
});

/** The configuration as the API loads it: environment, `.env`, `NAME_FILE` secrets. */
export function loadCliConfig(): AppConfig {
  return loadConfig(readEnvironment());
}

/**
 * The embedded defaults of the API (`prepareRuntime`): PGlite under VAR_DIR without
 * DATABASE_URL, and, for the commands that use Bull, the local or a private Redis without
 * REDIS_URL; never the development identity provider, which no command needs (and whose port
 * a running `npm start` may hold). What it chose goes to stderr: stdout is the result.
 */
export async function startRuntime(
  config: AppConfig,
  io: CliIo,
  needs: { redis: boolean },
): Promise<Runtime> {
  const runtime = await prepareRuntime(config, {
    redis: needs.redis,
    identityProvider: false,
    log: {
      info: (message) => {
        if (io.verbose) {
          io.note(message);
        }
      },
      warn: (message) => io.note(`note: ${message}`),
    },
  });
  if (runtime.config.database.embedded) {
    // PGlite has no lock of its own: two processes on one data directory corrupt it.
    io.note('note: no other labgate process may have the embedded database open meanwhile');
  }
  return runtime;
}

/** Nest's log lines, on stderr, with --verbose only (stdout is the command's result). */
class StderrLogger implements LoggerService {
  private write(level: string, message: unknown, params: unknown[]) {
    // Nest passes the context last, and an error's stack before it.
    const last = params[params.length - 1];
    const context = typeof last === 'string' ? `[${last}] ` : '';
    const extra = (typeof last === 'string' ? params.slice(0, -1) : params)
      .filter((p): p is string => typeof p === 'string')
      .map((p) => `\n${p}`)
      .join('');
    const text = typeof message === 'string' ? message : JSON.stringify(message);
    process.stderr.write(`${level} ${context}${text}${extra}\n`);
  }
  log(message: unknown, ...params: unknown[]) {
    this.write('LOG', message, params);
  }
  error(message: unknown, ...params: unknown[]) {
    this.write('ERROR', message, params);
  }
  warn(message: unknown, ...params: unknown[]) {
    this.write('WARN', message, params);
  }
  debug(message: unknown, ...params: unknown[]) {
    this.write('DEBUG', message, params);
  }
  verbose(message: unknown, ...params: unknown[]) {
    this.write('VERBOSE', message, params);
  }
}

/**
 * Boots the command's modules as an application context (no HTTP listener; migrations are
 * applied at boot, as by the API), runs `work` in an ORM request context of its own, and
 * closes everything, whether `work` succeeded or not.
 */
export async function withAppContext<T>(
  module: DynamicModule,
  io: CliIo,
  work: (app: INestApplicationContext) => Promise<T>,
): Promise<T> {
  const app = await NestFactory.createApplicationContext(module, {
    logger: io.verbose ? new StderrLogger() : false,
    abortOnError: false,
  });
  try {
    return await RequestContext.create(app.get(MikroORM).em, () => work(app));
  } finally {
    await app.close();
  }
}

/**
 * The origin audit rows of one CLI run carry: no IP, and a request id of its own, so that the
 * rows one command wrote (through services written for HTTP requests) can be told apart.
 */
export function cliOrigin(): RequestOrigin {
  return { requestId: `cli:${randomUUID()}` };
}

/** The API's own ValidationPipe: a command's input is checked by the DTO the route uses. */
export async function validateAs<T extends object>(metatype: Type<T>, value: object): Promise<T> {
  return (await createValidationPipe().transform(value, { type: 'body', metatype })) as T;
}
