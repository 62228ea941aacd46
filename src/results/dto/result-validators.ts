import { ValidateBy, type ValidationOptions } from 'class-validator';

export const SERVICE_KEY = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const TAG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:+-]{0,63}$/;
export const OWNER_PATTERN =
  /^(?:me|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

/** ISO 8601 date-time that names its timezone: `Z` or an offset. */
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

/** A tag: 1-64 characters, letters, digits and . _ : + - (not first). */
export function IsTag(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isTag',
      validator: {
        validate: (value: unknown) => typeof value === 'string' && TAG_PATTERN.test(value),
        defaultMessage: (args) =>
          `${args?.property} must hold tags of 1-64 characters: letters, digits and . _ : + - ` +
          '(not first)',
      },
    },
    options,
  );
}

/** Why a value is not an instant in the past, or undefined. */
export function pastInstantProblem(value: unknown, now = Date.now()): string | undefined {
  if (typeof value !== 'string' || !INSTANT.test(value)) {
    return 'must be an ISO 8601 date-time with a timezone (Z or ±hh:mm), e.g. 2026-11-20T14:03:00Z';
  }
  const at = Date.parse(value);
  if (Number.isNaN(at)) {
    return 'is not a valid date-time';
  }
  if (at > now) {
    return 'must not be in the future';
  }
  return undefined;
}

/** An ISO 8601 instant with a timezone, not later than now (a run that has happened). */
export function IsPastInstant(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isPastInstant',
      validator: {
        validate: (value: unknown) => pastInstantProblem(value) === undefined,
        defaultMessage: (args) => `${args?.property} ${pastInstantProblem(args?.value) ?? ''}`,
      },
    },
    options,
  );
}
