import { applyDecorators, ValidationError, ValidationPipe } from '@nestjs/common';
import { MaxDate, MinDate } from 'class-validator';
import { EARLIEST_DATE, LATEST_DATE } from './pagination';
import { clipInput } from './caller-input';
import { FieldError, validationProblem } from './problem';

/** Flattens class-validator's tree into one entry per failed rule, named by its path. */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((error) => {
    // A property the DTO does not declare is named by the caller: repeat only its start.
    const property = clipInput(error.property);
    const field = parent ? `${parent}.${property}` : property;
    const own = Object.entries(error.constraints ?? {}).map(([rule, message]) => ({
      field,
      message: rule === 'whitelistValidation' ? `property ${property} should not exist` : message,
    }));
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
