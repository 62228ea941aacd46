import { applyDecorators, ValidationError, ValidationPipe } from '@nestjs/common';
import { MaxDate, MinDate } from 'class-validator';
import { EARLIEST_DATE, LATEST_DATE } from './pagination';
import { FieldError, validationProblem } from './problem';

/** Flattens class-validator's tree into one entry per failed rule, named by its path. */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = Object.values(error.constraints ?? {}).map((message) => ({ field, message }));
    return [...own, ...flattenValidationErrors(error.children ?? [], field)];
  });
}

export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    exceptionFactory: (errors) => validationProblem(flattenValidationErrors(errors)),
  });
}

/**
 * A date the database can compare and store (years 1 to 9999): `@IsDate` alone lets through
 * every date JavaScript has, up to ±275 760 years, which PostgreSQL refuses with an error.
 */
export const WithinStorableDates = (field: string) =>
  applyDecorators(
    MinDate(EARLIEST_DATE, { message: `${field} must be in the years 1 to 9999` }),
    MaxDate(LATEST_DATE, { message: `${field} must be in the years 1 to 9999` }),
  );
