import { ValidateBy, type ValidationOptions } from 'class-validator';

const LABEL_KEY = /^[A-Za-z0-9._/-]{1,63}$/;
const MAX_LABELS = 50;
const MAX_LABEL_VALUE = 200;

/** `labels`: at most 50 entries, keys like `rack` or `lab.example/room`, short string values. */
export function IsLabels(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isLabels',
      validator: {
        validate: (value: unknown) =>
          typeof value === 'object' &&
          value !== null &&
          !Array.isArray(value) &&
          Object.keys(value).length <= MAX_LABELS &&
          Object.entries(value).every(
            ([key, v]) =>
              LABEL_KEY.test(key) && typeof v === 'string' && v.length <= MAX_LABEL_VALUE,
          ),
        defaultMessage: () =>
          `labels must be an object of at most ${MAX_LABELS} entries, keys of 1-63 characters ` +
          `[A-Za-z0-9._/-] and string values of at most ${MAX_LABEL_VALUE} characters`,
      },
    },
    options,
  );
}

/** The `ssh` settings are for the ssh runner only; another runner must not carry them. */
export function OnlyForSshRunner(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'onlyForSshRunner',
      validator: {
        validate: (_value: unknown, args) =>
          (args?.object as { runner?: unknown }).runner === 'ssh',
        defaultMessage: (args) =>
          `ssh is only for runner ssh; leave it out for runner ${String(
            (args?.object as { runner?: unknown }).runner,
          )}`,
      },
    },
    options,
  );
}
