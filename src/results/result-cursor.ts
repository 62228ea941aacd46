import { HttpStatus } from '@nestjs/common';
import { isStorableDate } from '../common/pagination';
import { clipInput } from '../common/caller-input';
import { ProblemException } from '../common/problem';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The keyset of a result listing: which sort it belongs to, the sort value of the last row seen
 * (a timestamp string, or the metric's JSON value, null when it had none) and its id. Opaque
 * to callers.
 */
export interface ResultCursor {
  sort: string;
  value: unknown;
  id: string;
}

export function encodeResultCursor(cursor: ResultCursor): string {
  return Buffer.from(JSON.stringify([cursor.sort, cursor.value, cursor.id])).toString('base64url');
}

function badCursor(detail: string, message: string): ProblemException {
  return new ProblemException(HttpStatus.BAD_REQUEST, detail, {
    type: 'urn:labgate:problem:validation',
    title: 'Validation failed',
    errors: [{ field: 'cursor', message }],
  });
}

/** Timestamps for createdAt/executedAt; a JSON scalar or null for a metric. */
function validValue(sort: string, value: unknown): boolean {
  if (sort.includes('metrics')) {
    // A NUL would reach PostgreSQL inside the statement and fail it.
    return (
      value === null ||
      ['number', 'boolean'].includes(typeof value) ||
      (typeof value === 'string' && !value.includes('\u0000'))
    );
  }
  return typeof value === 'string' && isStorableDate(new Date(value));
}

/** The cursor, if it is one this API gave out for the same sort; a 400 otherwise. */
export function decodeResultCursor(text: string, sort: string): ResultCursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString());
  } catch {
    parsed = undefined;
  }
  const [cursorSort, value, id] = Array.isArray(parsed) ? (parsed as unknown[]) : [];
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 3 ||
    typeof cursorSort !== 'string' ||
    typeof id !== 'string' ||
    !UUID.test(id) ||
    !validValue(cursorSort, value)
  ) {
    throw badCursor(
      'The cursor is not one this API gave out.',
      'cursor must be a nextCursor from a previous page',
    );
  }
  if (cursorSort !== sort) {
    throw badCursor(
      // A crafted cursor may carry any text as its sort.
      `The cursor belongs to sort=${clipInput(cursorSort)}, not sort=${clipInput(sort)}.`,
      'cursor must come from a page with the same sort',
    );
  }
  return { sort: cursorSort, value, id };
}
