import { HttpStatus } from '@nestjs/common';
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

/** Deeper than any body this API takes; far below where recursive mapping overflows. */
export const MAX_BODY_DEPTH = 64;

/** Half of a UTF-16 pair without its other half: JSON's `"\ud800"` parses to one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * What in a parsed body or query cannot be taken: nesting deeper than MAX_BODY_DEPTH, or in a
 * string or key a NUL or an unpaired surrogate (PostgreSQL stores neither in text or JSON,
 * and refuses the whole statement). Walked without recursion.
 */
export function unacceptable(value: unknown, limit = MAX_BODY_DEPTH): string | undefined {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (typeof current === 'string') {
      if (current.includes('\u0000')) {
        return 'contains a NUL character (U+0000), which cannot be stored';
      }
      if (LONE_SURROGATE.test(current)) {
        return 'contains an unpaired surrogate (\\ud800-\\udfff), which is not text';
      }
      continue;
    }
    if (current === null || typeof current !== 'object') {
      continue;
    }
    if (depth >= limit) {
      return `is nested deeper than ${limit} levels of arrays and objects`;
    }
    for (const [key, child] of Object.entries(current)) {
      stack.push([key, depth + 1], [child, depth + 1]);
    }
  }
  return undefined;
}

/**
 * Refuses, before validation, a body or query that could only fail later and badly: nested so
 * deep that validation's recursive mapping (class-transformer) overflows the stack, or holding
 * a NUL that PostgreSQL would refuse. Both were 500s (or a misleading 503).
 */
export function refuseUnstorableInput(req: Request, _res: Response, next: NextFunction) {
  for (const [part, value] of [
    ['body', req.body],
    ['query', req.query],
  ] as const) {
    const problem = unacceptable(value);
    if (problem) {
      next(
        new ProblemException(HttpStatus.BAD_REQUEST, `The request ${part} ${problem}.`, {
          type: 'urn:labgate:problem:validation',
          title: 'Validation failed',
          errors: [{ field: part, message: `${part} ${problem}` }],
        }),
      );
      return;
    }
  }
  next();
}
