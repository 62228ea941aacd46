import { HttpException, HttpStatus } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export class FieldError {
  /** Path of the offending field, e.g. `inputs.height` or `expiresAt`. */
  @ApiProperty({ example: 'expiresAt' })
  field: string;

  @ApiProperty({ example: 'expiresAt must be a valid ISO 8601 date string' })
  message: string;
}

/** RFC 9457 problem details, the body of every error labgate answers. */
export class ProblemDto {
  @ApiProperty({ example: 'about:blank', description: 'A URI naming the kind of problem.' })
  type: string;

  @ApiProperty({ description: 'The HTTP status phrase, or a short title of the problem.' })
  title: string;

  @ApiProperty({ description: 'The HTTP status code.' })
  status: number;

  @ApiPropertyOptional({ description: 'What went wrong, in words a person can act on.' })
  detail?: string;

  @ApiPropertyOptional({ description: 'The path of the request.' })
  instance?: string;

  @ApiPropertyOptional({ example: '5f0c6a3e-0c4b-4c1e-9d55-8a3c0e1f2b7a' })
  requestId?: string;

  @ApiPropertyOptional({ type: [FieldError], description: 'One entry per invalid field.' })
  errors?: FieldError[];
}

/**
 * An HTTP error that carries problem fields of its own (field errors, a specific type or
 * extension members); the global filter writes it as problem+json.
 */
export class ProblemException extends HttpException {
  constructor(
    status: HttpStatus,
    detail: string,
    readonly extra: { type?: string; title?: string; errors?: FieldError[] } & Record<
      string,
      unknown
    > = {},
  ) {
    super(detail, status);
  }
}

export function validationProblem(errors: FieldError[]): ProblemException {
  const detail =
    errors.length === 1
      ? `Invalid request: ${errors[0].message}.`
      : `Invalid request: ${errors.length} problems, see errors[].`;
  return new ProblemException(HttpStatus.BAD_REQUEST, detail, {
    type: 'urn:labgate:problem:validation',
    title: 'Validation failed',
    errors,
  });
}
