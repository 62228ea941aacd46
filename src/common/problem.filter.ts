import {
  ArgumentsHost,
  Catch,
  ExceptionFilter,
  HttpException,
  HttpStatus,
  Logger,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { STATUS_CODES } from 'node:http';
import { isDatabaseUnavailable } from '../database/database-unavailable';
import { PROBLEM_CONTENT_TYPE, ProblemDto, ProblemException } from './problem';

/**
 * The one place that turns an error into an HTTP answer: always problem+json, with the
 * request id, field errors for validation, and never a stack trace outside development.
 */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger('ProblemFilter');

  constructor(private readonly exposeStack: boolean) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request & { id?: string }>();
    const res = ctx.getResponse<Response>();
    const problem = this.toProblem(exception);
    problem.instance = req.originalUrl?.split('?')[0];
    problem.requestId = typeof req.id === 'string' ? req.id : undefined;

    if (problem.status >= 500) {
      this.logger.error(
        { err: exception, requestId: problem.requestId },
        `${req.method} ${problem.instance} failed`,
      );
      if (this.exposeStack && exception instanceof Error && problem.status === 500) {
        (problem as ProblemDto & { stack?: string }).stack = exception.stack;
      }
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem));
  }

  private toProblem(exception: unknown): ProblemDto {
    if (exception instanceof ProblemException) {
      const { type, title, errors, ...rest } = exception.extra;
      return {
        ...rest,
        type: type ?? 'about:blank',
        title: title ?? statusTitle(exception.getStatus()),
        status: exception.getStatus(),
        detail: exception.message,
        errors: errors,
      };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      return {
        type: 'about:blank',
        title: statusTitle(status),
        status,
        detail: httpExceptionDetail(exception),
      };
    }
    // PostgreSQL stopped or restarting: not the caller's fault, and the same request will work
    // once it is back (the pool reconnects by itself), so a 503 rather than a 500.
    if (isDatabaseUnavailable(exception)) {
      return {
        type: 'about:blank',
        title: statusTitle(HttpStatus.SERVICE_UNAVAILABLE),
        status: HttpStatus.SERVICE_UNAVAILABLE,
        detail: 'The database is unavailable right now; try again in a few seconds.',
      };
    }
    // Errors of Express middleware (http-errors) that say the caller is at fault.
    const status = (exception as { status?: unknown })?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return {
        type: 'about:blank',
        title: statusTitle(status),
        status,
        detail: (exception as Error).message,
      };
    }
    return {
      type: 'about:blank',
      title: statusTitle(HttpStatus.INTERNAL_SERVER_ERROR),
      status: HttpStatus.INTERNAL_SERVER_ERROR,
      detail: 'An unexpected error occurred; it has been logged with the request id.',
    };
  }
}

function statusTitle(status: number): string {
  return STATUS_CODES[status] ?? 'Error';
}

function httpExceptionDetail(exception: HttpException): string {
  const response = exception.getResponse();
  if (typeof response === 'string') {
    return response;
  }
  const message = (response as { message?: unknown }).message;
  if (Array.isArray(message)) {
    return message.join('; ');
  }
  return typeof message === 'string' ? message : exception.message;
}
