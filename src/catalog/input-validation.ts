import { clipInput } from '../common/caller-input';
import type { FieldError } from '../common/problem';
import type { InputSpec, InputValues, ServiceManifest } from './manifest';
import { metricsField, metricsMessage, resultValidator } from './result-schema';

/**
 * The rules of a service's input schema, as pure functions: the jobs module calls them on a
 * multipart submission or a TOMAAT `main.json`, the manifest loader on each input's default.
 */

export type CheckResult =
  { ok: true; value: string | number | boolean } | { ok: false; message: string };

const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A value as a person would recognise it in a message, cut short. */
export function show(value: unknown): string {
  const text = typeof value === 'number' ? String(value) : String(JSON.stringify(value));
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

export function isFileInput(spec: InputSpec): boolean {
  return spec.type === 'file' || spec.type === 'volume';
}

const fail = (message: string): CheckResult => ({ ok: false, message });

/**
 * Checks one non-file value against its input's rules. Accepts both the strings of a form
 * (`"3.5"`, `"true"`) and JSON values (`3.5`, `true`). The message has no subject: the caller
 * puts the input's name (or `inputs[2].default`) in front.
 */
export function checkInputValue(spec: InputSpec, raw: unknown): CheckResult {
  switch (spec.type) {
    case 'float':
    case 'int':
      return checkNumber(spec, raw);
    case 'boolean':
      return checkBoolean(raw);
    case 'string':
      return checkString(spec, raw);
    case 'choice':
      return checkChoice(spec, raw);
    default:
      return fail(`is a ${spec.type} input: send it as a file`);
  }
}

function checkNumber(spec: InputSpec, raw: unknown): CheckResult {
  const kind = spec.type === 'int' ? 'a whole number' : 'a number';
  let n: number;
  if (typeof raw === 'number') {
    n = raw;
  } else if (typeof raw === 'string' && DECIMAL.test(raw.trim())) {
    n = Number(raw.trim());
  } else {
    return fail(`must be ${kind} (got ${show(raw)})`);
  }
  if (!Number.isFinite(n)) {
    return fail(`must be ${kind} (got ${show(raw)})`);
  }
  if (spec.type === 'int' && !Number.isSafeInteger(n)) {
    return fail(`must be ${kind} (got ${show(raw)})`);
  }
  if (spec.min !== undefined && n < spec.min) {
    return fail(`must be at least ${spec.min} (got ${n})`);
  }
  if (spec.max !== undefined && n > spec.max) {
    return fail(`must be at most ${spec.max} (got ${n})`);
  }
  return { ok: true, value: n };
}

function checkBoolean(raw: unknown): CheckResult {
  if (typeof raw === 'boolean') {
    return { ok: true, value: raw };
  }
  const text = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
  if (text === 'true' || text === 'false') {
    return { ok: true, value: text === 'true' };
  }
  return fail(`must be true or false (got ${show(raw)})`);
}

function checkString(spec: InputSpec, raw: unknown): CheckResult {
  if (typeof raw !== 'string') {
    return fail(`must be text (got ${show(raw)})`);
  }
  if (raw.includes('\u0000')) {
    // PostgreSQL stores no NUL in text or JSON: the job could not be saved.
    return fail('must not contain a NUL character (U+0000)');
  }
  const length = [...raw].length;
  if (spec.maxLength !== undefined && length > spec.maxLength) {
    return fail(`must be at most ${spec.maxLength} characters long (got ${length})`);
  }
  // The pattern must match the whole value: operators write `[a-z]+`, not `^[a-z]+$`.
  if (spec.pattern !== undefined && !new RegExp(`^(?:${spec.pattern})$`, 'u').test(raw)) {
    return fail(`must match the pattern ${spec.pattern} (got ${show(raw)})`);
  }
  return { ok: true, value: raw };
}

function checkChoice(spec: InputSpec, raw: unknown): CheckResult {
  const options = spec.options ?? [];
  if (typeof raw !== 'string' || !options.includes(raw)) {
    return fail(`must be one of ${options.join(', ')} (got ${show(raw)})`);
  }
  return { ok: true, value: raw };
}

/** A form sends an empty field for an unset number or choice; JSON may send null. */
function isAbsent(spec: InputSpec, raw: unknown): boolean {
  return raw === undefined || raw === null || (raw === '' && spec.type !== 'string');
}

/**
 * Validates the non-file values of a submission and fills in defaults. `files` names the file
 * inputs that came with it; their values (`inputs/<filename>`) are the caller's to add.
 * Every problem is reported, one FieldError each, named by the input.
 */
export function validateFieldValues(
  manifest: ServiceManifest,
  fields: Record<string, unknown>,
  files: string[],
): { values: InputValues; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const values: InputValues = {};
  const specs = new Map(manifest.inputs.map((spec) => [spec.name, spec]));
  const error = (field: string, message: string) => errors.push({ field, message });

  for (const name of Object.keys(fields)) {
    const spec = specs.get(name);
    if (!spec) {
      // Named by the caller (a JSON key): repeat only its start.
      const shown = clipInput(name);
      error(shown, `${shown} is not an input of service ${manifest.key}`);
    } else if (isFileInput(spec)) {
      error(name, `${name} is a ${spec.type} input: send it as a file, not a text field`);
    }
  }
  for (const name of new Set(files)) {
    const spec = specs.get(name);
    if (!spec) {
      error(name, `${name} is not an input of service ${manifest.key}`);
    } else if (!isFileInput(spec)) {
      error(name, `${name} is a ${spec.type} input, not a file`);
    }
  }
  for (const spec of manifest.inputs) {
    const { name } = spec;
    if (isFileInput(spec)) {
      if (spec.required && !files.includes(name)) {
        error(name, `${name} is required: attach a ${describeFile(spec)}`);
      }
      continue;
    }
    const raw = Object.hasOwn(fields, name) ? fields[name] : undefined;
    if (isAbsent(spec, raw)) {
      if (spec.default !== undefined) {
        values[name] = spec.default;
      } else if (spec.required) {
        error(name, `${name} is required`);
      }
      continue;
    }
    const checked = checkInputValue(spec, raw);
    if (checked.ok) {
      values[name] = checked.value;
    } else {
      error(name, `${name} ${checked.message}`);
    }
  }
  return { values, errors };
}

function describeFile(spec: InputSpec): string {
  return spec.extensions?.length ? `${spec.extensions.join(', ')} file` : 'file';
}

/**
 * Whether an upload's file name is safe to write as `inputs/<name>` and has an allowed
 * extension (case-insensitive, double extensions such as `.nii.gz` included).
 */
export function checkFileName(spec: InputSpec, filename: string): string | undefined {
  const { name } = spec;
  if (!filename) {
    return `${name} has no file name`;
  }
  if (
    filename === '.' ||
    filename === '..' ||
    /[/\\]/.test(filename) ||
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f]/.test(filename) ||
    Buffer.byteLength(filename) > 255
  ) {
    return `${name} has an unusable file name ${show(filename)}: no paths, control characters or more than 255 bytes`;
  }
  const lower = filename.toLowerCase();
  if (spec.extensions?.length && !spec.extensions.some((ext) => lower.endsWith(ext))) {
    return `${name} must be a ${spec.extensions.join(', ')} file (got ${show(filename)})`;
  }
  return undefined;
}

/** Whether a part's declared media type is allowed (parameters such as `; charset` ignored). */
export function checkMediaType(spec: InputSpec, mediaType: string | undefined): string | undefined {
  if (!spec.mediaTypes?.length) {
    return undefined;
  }
  const type = (mediaType ?? '').split(';')[0].trim().toLowerCase();
  if (!spec.mediaTypes.includes(type)) {
    return `${spec.name} must be of type ${spec.mediaTypes.join(', ')} (got ${show(type || 'none')})`;
  }
  return undefined;
}

export { checkVolumeHeader, VOLUME_EXTENSIONS, VOLUME_HEADER_BYTES } from './volume-header';

/**
 * Validates the metrics a run reported against the service's result schema; no schema, no
 * rules. Fields are named like `metrics.sum`.
 */
export function validateMetrics(manifest: ServiceManifest, metrics: unknown): FieldError[] {
  if (!manifest.resultSchema) {
    return [];
  }
  const validate = resultValidator(manifest.resultSchema);
  if (validate(metrics)) {
    return [];
  }
  return (validate.errors ?? []).map((e) => {
    const field = metricsField(e);
    return { field, message: metricsMessage(field, e) };
  });
}
