import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';

/**
 * Compiles a service's result schema in Ajv's strict mode, so that a typo in a keyword stops
 * the boot instead of silently accepting every result. Draft-07 by default, 2020-12 when the
 * schema says so. A fresh Ajv per schema: two services may use the same `$id`.
 */
export function compileResultSchema(schema: Record<string, unknown>): ValidateFunction {
  const options = { strict: true, allErrors: true };
  const ajv =
    typeof schema.$schema === 'string' && schema.$schema.includes('/draft/2020-12/')
      ? new Ajv2020(options)
      : new Ajv(options);
  addFormats(ajv);
  return ajv.compile(schema);
}

const compiled = new WeakMap<object, ValidateFunction>();

/** The validator of a loaded manifest's schema, compiled once. */
export function resultValidator(schema: Record<string, unknown>): ValidateFunction {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = compileResultSchema(schema);
    compiled.set(schema, validate);
  }
  return validate;
}

/** `metrics.items[2].name` from Ajv's JSON pointer (and the missing property, if any). */
export function metricsField(error: ErrorObject): string {
  const segments = error.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const params = error.params as { missingProperty?: string; additionalProperty?: string };
  const extra = params.missingProperty ?? params.additionalProperty;
  if (extra !== undefined) {
    segments.push(extra);
  }
  return segments.reduce(
    (path, s) => (/^\d+$/.test(s) ? `${path}[${s}]` : `${path}.${s}`),
    'metrics',
  );
}

/** A message a person can act on, without Ajv's repeated property names. */
export function metricsMessage(field: string, error: ErrorObject): string {
  switch (error.keyword) {
    case 'required':
      return `${field} is required`;
    case 'additionalProperties':
      return `${field} is not allowed by the result schema`;
    default:
      return `${field} ${error.message ?? 'is invalid'}`;
  }
}
