import { HttpException } from '@nestjs/common';
import { ConfigError } from '../config';
import { ProblemException } from '../common/problem';

/** A failure the CLI explains in one line (exit status 1), never with a stack trace. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * The one line a failed command prints. Services throw Nest HTTP exceptions (their messages
 * are written for API callers and read as well here); field errors are joined onto the line.
 */
export function describeError(err: unknown): string {
  if (err instanceof ConfigError) {
    return `invalid configuration: ${err.problems.join('; ')}`;
  }
  if (err instanceof ProblemException && err.extra.errors?.length) {
    return err.extra.errors.map((e) => e.message).join('; ');
  }
  if (err instanceof HttpException) {
    return err.message;
  }
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n').find((line) => line.trim() !== '') ?? 'failed';
}
