import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Module } from '@nestjs/common';
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

/** Structured JSON logs (pino) with the request id on every line; secrets redacted. */
@Module({
  imports: [
    LoggerModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        pinoHttp: {
          level: config.logLevel,
          genReqId: (req: IncomingMessage) => (req as RequestWithId).id ?? randomUUID(),
          customAttributeKeys: { reqId: 'requestId' },
          redact: {
            paths: [
              'req.headers.authorization',
              'req.headers.cookie',
              'req.headers["x-job-token"]',
              'res.headers["set-cookie"]',
              'req.query.token',
            ],
            censor: '[redacted]',
          },
          serializers: {
            req: (req: { id: string; method: string; url: string }) => ({
              id: req.id,
              method: req.method,
              url: req.url.replace(/([?&]token=)[^&]*/g, '$1[redacted]'),
            }),
          },
          autoLogging: { ignore: (req) => req.url?.startsWith('/health/') ?? false },
        },
      }),
    }),
  ],
})
export class LoggingModule {}
