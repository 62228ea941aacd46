/**
 * Typed reads of one field of a parsed YAML object, each recording a problem (named by its
 * path, e.g. `inputs[1].maxBytes`) instead of throwing, so that a manifest's every mistake is
 * reported at once.
 */
export type YamlObject = Record<string, unknown>;

export class Problems {
  readonly list: string[] = [];

  add(path: string, message: string): void {
    this.list.push(`${path}: ${message}`);
  }
}

export function isObject(value: unknown): value is YamlObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function child(path: string, key: string | number): string {
  if (typeof key === 'number') {
    return `${path}[${key}]`;
  }
  return path ? `${path}.${key}` : key;
}

/** What a value is, for messages: `"floaty"`, `12`, `a list`, `an object`. */
export function describe(value: unknown): string {
  if (Array.isArray(value)) {
    return 'a list';
  }
  if (isObject(value)) {
    return 'an object';
  }
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

export class FieldReader {
  constructor(
    private readonly problems: Problems,
    private readonly object: YamlObject,
    private readonly path: string,
  ) {}

  private at(key: string) {
    return child(this.path, key);
  }

  has(key: string): boolean {
    return this.object[key] !== undefined && this.object[key] !== null;
  }

  string(key: string, rules: { required?: boolean; pattern?: RegExp; hint?: string } = {}) {
    const value = this.object[key];
    if (value === undefined || value === null) {
      if (rules.required) {
        this.problems.add(this.at(key), 'is required');
      }
      return undefined;
    }
    if (typeof value !== 'string' || value.trim() === '') {
      const quote = typeof value === 'number' ? ` (quote it: "${value}")` : '';
      this.problems.add(this.at(key), `must be a non-empty string, not ${describe(value)}${quote}`);
      return undefined;
    }
    if (rules.pattern && !rules.pattern.test(value)) {
      this.problems.add(this.at(key), `${describe(value)} ${rules.hint ?? 'is malformed'}`);
      return undefined;
    }
    return value;
  }

  boolean(key: string): boolean | undefined {
    const value = this.object[key];
    if (value === undefined || value === null) {
      return undefined;
    }
    if (typeof value !== 'boolean') {
      this.problems.add(this.at(key), `must be true or false, not ${describe(value)}`);
      return undefined;
    }
    return value;
  }

  number(key: string, rules: { integer?: boolean; min?: number; max?: number } = {}) {
    const value = this.object[key];
    if (value === undefined || value === null) {
      return undefined;
    }
    const kind = rules.integer ? 'a whole number' : 'a number';
    if (
      typeof value !== 'number' ||
      !Number.isFinite(value) ||
      (rules.integer && !Number.isSafeInteger(value))
    ) {
      this.problems.add(this.at(key), `must be ${kind}, not ${describe(value)}`);
      return undefined;
    }
    if (rules.min !== undefined && value < rules.min) {
      this.problems.add(this.at(key), `must be at least ${rules.min}, not ${value}`);
      return undefined;
    }
    if (rules.max !== undefined && value > rules.max) {
      this.problems.add(this.at(key), `must be at most ${rules.max}, not ${value}`);
      return undefined;
    }
    return value;
  }

  /** A byte count: a whole number, or a size such as `10 MiB` (units are powers of 1024). */
  size(key: string): number | undefined {
    const value = this.object[key];
    if (typeof value !== 'string') {
      return this.number(key, { integer: true, min: 1 });
    }
    const m = /^(\d+)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?$/i.exec(value.trim());
    const bytes = m ? Number(m[1]) * 1024 ** 'bkmgt'.indexOf((m[2] ?? 'b')[0].toLowerCase()) : 0;
    if (!m || !Number.isSafeInteger(bytes) || bytes < 1) {
      this.problems.add(this.at(key), `${describe(value)} is not a size (e.g. 10485760, 10 MiB)`);
      return undefined;
    }
    return bytes;
  }

  /** A list of non-empty strings, each optionally matching a pattern. */
  strings(key: string, rules: { pattern?: RegExp; hint?: string; nonEmpty?: boolean } = {}) {
    const value = this.object[key];
    if (value === undefined || value === null) {
      return undefined;
    }
    if (!Array.isArray(value)) {
      this.problems.add(this.at(key), `must be a list of strings, not ${describe(value)}`);
      return undefined;
    }
    if (rules.nonEmpty && value.length === 0) {
      this.problems.add(this.at(key), 'must not be empty');
      return undefined;
    }
    const result: string[] = [];
    value.forEach((item: unknown, i) => {
      const at = child(this.at(key), i);
      if (typeof item !== 'string' || item === '') {
        this.problems.add(at, `must be a non-empty string, not ${describe(item)}`);
      } else if (rules.pattern && !rules.pattern.test(item)) {
        this.problems.add(at, `${describe(item)} ${rules.hint ?? 'is malformed'}`);
      } else if (result.includes(item)) {
        this.problems.add(at, `${describe(item)} is listed twice`);
      } else {
        result.push(item);
      }
    });
    return result.length === value.length ? result : undefined;
  }

  /** Reports keys that are not in `known`; `elsewhere` explains keys known to other types. */
  onlyKeys(
    known: readonly string[],
    elsewhere: (key: string) => string | undefined = () => undefined,
  ) {
    for (const key of Object.keys(this.object)) {
      if (!known.includes(key)) {
        this.problems.add(
          this.at(key),
          elsewhere(key) ?? `is not a known field (expected ${known.join(', ')})`,
        );
      }
    }
  }
}
