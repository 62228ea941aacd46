import { checkInputValue, isFileInput } from './input-validation';
import { INPUT_TYPES, InputSpec, InputType } from './manifest';
import { child, describe, FieldReader, isObject, Problems, YamlObject } from './manifest-fields';
import { VOLUME_EXTENSIONS } from './volume-header';

export const INPUT_NAME = /^[a-zA-Z_][a-zA-Z0-9_]{0,63}$/;
/** Multipart fields of the submission itself, and names that would clash with JS objects. */
export const RESERVED_INPUT_NAMES = ['service', 'payload', 'targets', '__proto__'];
const EXTENSION = /^\.[a-z0-9][a-z0-9._-]*$/i;
const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9*][a-z0-9!#$&^_.+*-]*$/i;
/** Uploads may be large (videos, volumes); a service lowers this for its own inputs. */
export const DEFAULT_MAX_BYTES = 2 * 1024 ** 3;

const COMMON_INPUT_KEYS = ['name', 'type', 'title', 'description', 'required', 'default'];
const TYPE_KEYS: Record<InputType, string[]> = {
  file: ['extensions', 'mediaTypes', 'maxBytes'],
  volume: ['extensions', 'mediaTypes', 'maxBytes'],
  float: ['min', 'max'],
  int: ['min', 'max'],
  string: ['maxLength', 'pattern'],
  boolean: [],
  choice: ['options'],
};

/** The `inputs` list of a manifest: each input's rules checked, its default checked against them. */
export function parseInputs(raw: unknown, problems: Problems): InputSpec[] | undefined {
  if (raw === undefined || raw === null) {
    return [];
  }
  if (!Array.isArray(raw)) {
    problems.add('inputs', `must be a list of inputs, not ${describe(raw)}`);
    return undefined;
  }
  const inputs: InputSpec[] = [];
  const seen = new Map<string, number>();
  raw.forEach((item: unknown, i) => {
    const path = child('inputs', i);
    const input = parseInput(item, path, problems);
    if (!input) {
      return;
    }
    const first = seen.get(input.name);
    if (first !== undefined) {
      problems.add(child(path, 'name'), `"${input.name}" is already the name of inputs[${first}]`);
      return;
    }
    seen.set(input.name, i);
    inputs.push(input);
  });
  return inputs.length === raw.length ? inputs : undefined;
}

function parseInput(raw: unknown, path: string, problems: Problems): InputSpec | undefined {
  if (!isObject(raw)) {
    problems.add(path, `must be a mapping (name, type, …), not ${describe(raw)}`);
    return undefined;
  }
  const count = problems.list.length;
  const input = new FieldReader(problems, raw, path);
  const name = input.string('name', {
    required: true,
    pattern: INPUT_NAME,
    hint: 'must be letters, digits and underscores (at most 64, not starting with a digit)',
  });
  if (name && RESERVED_INPUT_NAMES.includes(name)) {
    problems.add(child(path, 'name'), `"${name}" is reserved (${RESERVED_INPUT_NAMES.join(', ')})`);
  }
  const type = raw.type as InputType;
  if (!INPUT_TYPES.includes(type)) {
    const types = INPUT_TYPES.join(', ');
    problems.add(
      child(path, 'type'),
      raw.type === undefined || raw.type === null
        ? `is required (one of ${types})`
        : `${describe(raw.type)} is not one of ${types}`,
    );
    return undefined;
  }
  const known = [...COMMON_INPUT_KEYS, ...TYPE_KEYS[type]];
  input.onlyKeys(known, (key) =>
    Object.values(TYPE_KEYS).some((keys) => keys.includes(key))
      ? `does not apply to ${type} inputs`
      : undefined,
  );
  const spec: InputSpec = { name: name ?? '', type, required: true };
  const title = input.string('title');
  const description = input.string('description');
  if (title) {
    spec.title = title;
  }
  if (description) {
    spec.description = description;
  }
  readTypeRules(spec, input, raw, path, problems);
  const required = input.boolean('required');
  if (raw.default !== undefined && raw.default !== null) {
    readDefault(spec, raw.default, child(path, 'default'), problems);
    if (required === true) {
      problems.add(child(path, 'required'), 'cannot be true when a default is given');
    }
    spec.required = false;
  } else {
    spec.required = required ?? true;
  }
  return problems.list.length === count ? spec : undefined;
}

function readTypeRules(
  spec: InputSpec,
  input: FieldReader,
  raw: YamlObject,
  path: string,
  problems: Problems,
): void {
  switch (spec.type) {
    case 'int':
    case 'float': {
      const integer = spec.type === 'int';
      spec.min = input.number('min', { integer });
      spec.max = input.number('max', { integer });
      if (spec.min !== undefined && spec.max !== undefined && spec.min > spec.max) {
        problems.add(child(path, 'min'), `${spec.min} is more than max ${spec.max}`);
      }
      break;
    }
    case 'string':
      spec.maxLength = input.number('maxLength', { integer: true, min: 1 });
      spec.pattern = input.string('pattern');
      if (spec.pattern !== undefined) {
        try {
          new RegExp(spec.pattern, 'u');
        } catch (err) {
          problems.add(
            child(path, 'pattern'),
            `is not a valid regular expression: ${(err as Error).message}`,
          );
        }
      }
      break;
    case 'choice':
      spec.options = input.strings('options', { nonEmpty: true });
      if (raw.options === undefined || raw.options === null) {
        problems.add(child(path, 'options'), 'is required for a choice input (a non-empty list)');
      }
      break;
    case 'file':
    case 'volume': {
      const volume = spec.type === 'volume';
      spec.extensions = input
        .strings('extensions', {
          pattern: EXTENSION,
          hint: 'must be an extension starting with a dot, such as .trc or .nii.gz',
          nonEmpty: volume,
        })
        ?.map((e) => e.toLowerCase());
      if (volume && !input.has('extensions')) {
        spec.extensions = [...VOLUME_EXTENSIONS];
      }
      if (volume) {
        spec.extensions?.forEach((ext, i) => {
          if (!(VOLUME_EXTENSIONS as readonly string[]).includes(ext)) {
            problems.add(
              child(child(path, 'extensions'), i),
              `"${ext}" is not a volume format labgate can check (${VOLUME_EXTENSIONS.join(', ')})`,
            );
          }
        });
      }
      spec.mediaTypes = input
        .strings('mediaTypes', { pattern: MEDIA_TYPE, hint: 'is not a media type (type/subtype)' })
        ?.map((t) => t.toLowerCase());
      spec.maxBytes = input.size('maxBytes') ?? DEFAULT_MAX_BYTES;
      break;
    }
  }
  for (const key of Object.keys(spec) as (keyof InputSpec)[]) {
    if (spec[key] === undefined) {
      delete spec[key];
    }
  }
}

const DEFAULT_TYPES: Partial<Record<InputType, string>> = {
  int: 'number',
  float: 'number',
  string: 'string',
  choice: 'string',
  boolean: 'boolean',
};

function readDefault(spec: InputSpec, value: unknown, path: string, problems: Problems): void {
  if (isFileInput(spec)) {
    problems.add(path, `a ${spec.type} input cannot have a default`);
    return;
  }
  if (typeof value !== DEFAULT_TYPES[spec.type]) {
    problems.add(path, `must be a ${DEFAULT_TYPES[spec.type]}, not ${describe(value)}`);
    return;
  }
  const checked = checkInputValue(spec, value);
  if (!checked.ok) {
    problems.add(path, checked.message);
    return;
  }
  spec.default = checked.value;
}
