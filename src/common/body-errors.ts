import type { NextFunction, Request, Response } from 'express';
import { ProblemException } from './problem';

/** Errors raised by Express's body parsers carry an HTTP status and a `type`. */
interface BodyParserError {
  status?: number;
  type?: string;
  limit?: number;
  message: string;
}

const DETAILS: Record<string, (e: BodyParserError) => string> = {
  'entity.too.large': (e) =>
    `The request body is larger than the ${e.limit ?? 'configured'}-byte limit.`,
  'entity.parse.failed': (e) => `The request body is not valid JSON (${e.message}).`,
  'encoding.unsupported': () => 'The request body has an unsupported content encoding.',
  'charset.unsupported': () => 'The request body has an unsupported charset.',
  'request.aborted': () => 'The request was aborted while its body was read.',
};

/**
 * Express error middleware placed right after the body parsers: turns their errors into
 * problems a caller can act on, before Nest would flatten them into a bare 400.
 */
export function translateBodyErrors(
  err: BodyParserError,
  _req: Request,
  _res: Response,
  next: NextFunction,
) {
  const describe = err?.type ? DETAILS[err.type] : undefined;
  if (!describe || typeof err.status !== 'number') {
    next(err);
    return;
  }
  next(new ProblemException(err.status, describe(err)));
}
