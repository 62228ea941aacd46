import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Injectable, Module } from '@nestjs/common';
import pino, { type Logger } from 'pino';
import { LoggerModule } from 'nestjs-pino';
import { AppConfig } from '../config';

export const REQUEST_ID_HEADER = 'x-request-id';
const ACCEPTABLE_REQUEST_ID = /^[\w.:-]{1,128}$/;

type RequestWithId = IncomingMessage & { id?: string };

/**
 * Express middleware, mounted before everything else so that even unknown routes get one:
 * keeps a caller's request id when it is sane (so traces join up), else makes one, and echoes
 * it in `X-Request-Id`.
 */
export function assignRequestId(req: RequestWithId, res: ServerResponse, next: () => void) {
  const given = req.headers[REQUEST_ID_HEADER];
  req.id = typeof given === 'string' && ACCEPTABLE_REQUEST_ID.test(given) ? given : randomUUID();
  res.setHeader('X-Request-Id', req.id);
  next();
}

/** Paths pino censors in every line, wherever a caller or a serializer put them. */
const REDACT = {
  paths: [
    'req.headers.authorization',
    'req.headers.cookie',
    'req.headers["x-job-token"]',
    'res.headers["set-cookie"]',
    'req.query.token',
  ],
  censor: '[redacted]',
};

/** A request in the access line: never its headers, and a `token` in the query censored. */
export function serializeRequest(req: { id?: unknown; method?: string; url?: string }) {
  return {
    id: req.id,
    method: req.method,
    url: (req.url ?? '').replace(/([?&]token=)[^&]*/g, '$1[redacted]'),
  };
}

type LoggedRequest = RequestWithId & { log?: Logger };

/**
 * The root JSON logger (pino) and the per-request part of logging, in place of pino-http:
 * each request gets a child logger carrying its id (nestjs-pino hands it to every Nest logger
 * call made for the request), and one access line when the answer ends, "request completed"
 * (or "request errored" for a 5xx, "request aborted" when the client went away). pino-http
 * serialised each request into two child loggers and hung listeners on every answer even when
 * LOG_LEVEL drops info lines: about a tenth of the CPU of a cheap request (bench/http.ts).
 */
@Injectable()
export class RequestLogging {
  readonly root: Logger;

  constructor(config: AppConfig) {
    this.root = pino({
      level: config.logLevel,
      redact: REDACT,
      serializers: { req: serializeRequest, err: pino.stdSerializers.err },
    });
  }

  /** Express middleware, mounted right after assignRequestId (bootstrap). */
  middleware() {
    const root = this.root;
    const access = root.isLevelEnabled('info');
    return (req: LoggedRequest, res: ServerResponse, next: () => void) => {
      const log = root.child({ requestId: req.id });
      req.log = log;
      if (access && !req.url?.startsWith('/health/')) {
        const start = Date.now();
        res.once('close', () => {
          const status = res.writableFinished ? res.statusCode : undefined;
          log.info(
            {
              req: serializeRequest(req),
              res: { statusCode: status },
              responseTime: Date.now() - start,
            },
            status === undefined
              ? 'request aborted'
              : status >= 500
                ? 'request errored'
                : 'request completed',
          );
        });
      }
      next();
    };
  }
}

/** Provides RequestLogging to nestjs-pino's module factory. */
@Module({ providers: [RequestLogging], exports: [RequestLogging] })
class RequestLoggingModule {}

/** Structured JSON logs (pino) with the request id on every line; secrets redacted. */
@Module({
  imports: [
    LoggerModule.forRootAsync({
      imports: [RequestLoggingModule],
      inject: [RequestLogging],
      // useExisting: the request's logger is set by RequestLogging's middleware, not pino-http.
      useFactory: (logging: RequestLogging) => ({
        pinoHttp: { logger: logging.root },
        useExisting: true,
      }),
    }),
  ],
})
export class LoggingModule {}
