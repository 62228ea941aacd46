import fc from 'fast-check';
import { type OpenApiDocument, resolveSchema, type SchemaObject } from './openapi';

/** One megabyte: the JSON body limit (BODY_LIMIT's default) is 1 MiB. */
export const MB = 1024 * 1024;

/**
 * Strings that broke parsers and databases somewhere once, by kind, so that each kind comes up
 * often: control characters (PostgreSQL refuses NUL in text and JSON), broken or tricky
 * Unicode, numbers at and past every limit, dates outside PostgreSQL's range, paths, query
 * languages, prototype keys, look-alikes of tokens and ids.
 */
export const NASTY_KINDS: Record<string, string[]> = {
  control: ['\u0000', 'a\u0000b', 'x\u0001\u001f', '\r\n', '\t', '\u007f'],
  unicode: [
    '\uD800',
    'x\uDFFFy',
    '\u202Egnp.exe',
    '\u200F\u202B\u0645\u0631\u062D\u0628\u0627',
    '\uFEFF',
    '𝕳𝖊𝖑𝖑𝖔 👩‍👩‍👧‍👦',
    '\uFFFF\uFFFE',
  ],
  number: [
    'NaN',
    'Infinity',
    '-Infinity',
    '-0',
    '-1',
    '0',
    '1e309',
    '1e-400',
    '0x10',
    '1_000',
    '9007199254740993',
    '2147483648',
    '-2147483649',
    '9223372036854775808',
    '-9223372036854775809',
    '1.5',
  ],
  date: [
    '-271821-04-20T00:00:00.000Z',
    '+275760-09-13T00:00:00.000Z',
    '-004714-11-23T00:00:00Z',
    '0000-01-01T00:00:00Z',
    '2024-02-30T25:61:61Z',
    '1970-01-01T00:00:00Z',
  ],
  path: ['../../../../etc/passwd', '..\\..\\windows', '/etc/passwd', '%00', '%', '%zz', '%E0%A4%A'],
  query: [
    "' OR '1'='1",
    "'; drop table job; --",
    '$where',
    '{"$gt": ""}',
    'metrics.a>1',
    "metrics.'x'>1",
    'metrics.a.b.c.d.e.f.g.h>-1e309',
    'metrics.__proto__=1',
    'metrics..a=1',
    'metrics.a~[',
    'metrics.a~(?<x>',
    '-metrics.a',
    '--createdAt',
    'metrics.a"b',
  ],
  words: [
    '',
    ' ',
    'null',
    'undefined',
    'true',
    '[]',
    '{}',
    '__proto__',
    'constructor',
    'prototype',
    'me',
    'ME',
    '*',
    'lgd_',
    'lgp_',
    'lgt_',
    'https://169.254.169.254/latest/meta-data',
    'file:///etc/passwd',
    'javascript:alert(1)',
    '<script>alert(1)</script>',
  ],
  id: [
    '00000000-0000-0000-0000-000000000000',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
    'FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF',
    'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz',
    '00000000-0000-0000-0000-0000000000000',
    '{00000000-0000-0000-0000-000000000000}',
  ],
};

const bigString = fc
  .tuple(fc.constantFrom('a', 'é', '\u0000', '𝕳', '\uD800'), fc.integer({ min: 1000, max: 70_000 }))
  .map(([c, n]) => c.repeat(n));

/** A string likely to hurt: each kind above as often as the others, random and long ones. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  ...Object.values(NASTY_KINDS).map((kind) => ({ weight: 2, arbitrary: fc.constantFrom(...kind) })),
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: bigString },
);

const nastyNumber = fc.oneof(
  fc.constantFrom(
    -1,
    0,
    -0,
    2 ** 31,
    -(2 ** 31) - 1,
    2 ** 53 + 2,
    -(2 ** 63),
    1e308,
    -1e308,
    5e-324,
    0.5,
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** Any JSON value, biased to the shapes that break validation and mapping. */
export const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: nastyString },
  { weight: 2, arbitrary: nastyNumber },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], { '': null }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  {
    weight: 1,
    arbitrary: fc.dictionary(
      fc.constantFrom('__proto__', 'constructor', 'a', '$ref'),
      nastyString,
      {
        maxKeys: 3,
      },
    ),
  },
);

export interface IdSource {
  /** Real ids that fit a schema of this format/name, to reach past the "not found" answers. */
  realFor(name: string): string[];
}

/** Values that satisfy a schema (roughly: what a well-behaved client sends). */
export function validValue(
  doc: OpenApiDocument,
  raw: SchemaObject | undefined,
  ids: IdSource,
  name = '',
  depth = 0,
): fc.Arbitrary<unknown> {
  const schema = resolveSchema(doc, raw);
  if (schema.enum?.length) {
    return fc.constantFrom(...schema.enum);
  }
  if (schema.oneOf?.length || schema.anyOf?.length) {
    return fc.oneof(
      ...(schema.oneOf ?? schema.anyOf ?? []).map((s) => validValue(doc, s, ids, name, depth)),
    );
  }
  switch (schema.type) {
    case 'integer':
      return fc.integer({ min: schema.minimum ?? -1000, max: schema.maximum ?? 1000 });
    case 'number':
      // The numbers of this API are counts, limits and priorities: a valid one is an integer.
      return fc.integer({
        min: Math.ceil(schema.minimum ?? -1000),
        max: Math.floor(schema.maximum ?? 1000),
      });
    case 'boolean':
      return fc.boolean();
    case 'array':
      return depth > 3
        ? fc.constant([])
        : fc.array(validValue(doc, schema.items, ids, name, depth + 1), { maxLength: 3 });
    case 'object':
      return depth > 3 ? fc.constant({}) : validObject(doc, schema, ids, depth);
    case 'string':
    default:
      return validString(schema, ids, name);
  }
}

function validString(schema: SchemaObject, ids: IdSource, name: string): fc.Arbitrary<string> {
  if (schema.format === 'uuid' || /(^|[^a-z])ids?$/i.test(name)) {
    const real = ids.realFor(name);
    return real.length ? fc.oneof(fc.constantFrom(...real), fc.uuid()) : fc.uuid();
  }
  if (schema.format === 'date-time' || /At$|Since$|Before$|^since$/.test(name)) {
    return fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
          .map((d) => d.toISOString()),
      },
      // Valid ISO 8601 all the same, and outside what PostgreSQL stores.
      { weight: 1, arbitrary: fc.constantFrom(...EXTREME_DATES) },
    );
  }
  if (/url/i.test(name)) {
    return fc.constantFrom('https://example.org/hook', 'http://127.0.0.1:9/hook');
  }
  const real = ids.realFor(name);
  const text = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.string({
        minLength: Math.min(schema.minLength ?? 0, 5),
        maxLength: Math.min(schema.maxLength ?? 20, 20),
      }),
    },
    // A string of the right type whose characters are the problem.
    { weight: 2, arbitrary: fc.constantFrom(...AWKWARD_TEXT) },
  );
  return real.length ? fc.oneof(fc.constantFrom(...real), text) : text;
}

/** Strings a well-typed client may still send: NUL, lone surrogates, bidi, emoji, width. */
const AWKWARD_TEXT = [
  'a\u0000b',
  '\u0000',
  'x\uD800y',
  '\u202Eevil',
  '\u0645\u0631\u062D\u0628\u0627',
  '👩‍👩‍👧‍👦',
  'a'.repeat(5000),
  "it's",
  'back\\slash',
];

/** ISO 8601 dates JavaScript parses that lie outside PostgreSQL's timestamp range. */
const EXTREME_DATES = [
  '-271821-04-20T00:00:00.000Z',
  '+275760-09-13T00:00:00.000Z',
  '-004714-11-23T00:00:00Z',
  '0000-01-01T00:00:00Z',
];

function validObject(
  doc: OpenApiDocument,
  schema: SchemaObject,
  ids: IdSource,
  depth: number,
): fc.Arbitrary<Record<string, unknown>> {
  const properties = Object.entries(schema.properties ?? {});
  if (properties.length === 0) {
    return fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), {
      maxKeys: 3,
    });
  }
  return fc.record(
    Object.fromEntries(
      properties.map(([key, s]) => [key, validValue(doc, s, ids, key, depth + 1)]),
    ),
    { requiredKeys: (schema.required ?? []).filter((k) => schema.properties?.[k]) },
  );
}

type Mutation =
  | { kind: 'none' }
  | { kind: 'replace'; at: number; value: unknown }
  | { kind: 'drop'; at: number }
  | { kind: 'extra'; key: string; value: unknown };

/** Every place in a JSON value where a mutation can land: [parent, key] pairs. */
function slotsOf(value: unknown, depth = 0): Array<[Record<string, unknown>, string]> {
  if (value === null || typeof value !== 'object' || depth > 4) {
    return [];
  }
  const record = value as Record<string, unknown>;
  return Object.keys(record).flatMap((key): Array<[Record<string, unknown>, string]> => [
    [record, key],
    ...slotsOf(record[key], depth + 1),
  ]);
}

/** A copy of `original` with one mutation applied. */
function mutate(original: unknown, mutation: Mutation): unknown {
  if (mutation.kind === 'none') {
    return original;
  }
  // A copy: fast-check may hand the same value out again while shrinking.
  const value = structuredClone(original);
  if (mutation.kind === 'extra') {
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? { ...value, [mutation.key]: mutation.value }
      : value;
  }
  const slots = slotsOf(value);
  if (slots.length === 0) {
    return mutation.kind === 'replace' ? mutation.value : value;
  }
  const [parent, key] = slots[mutation.at % slots.length];
  if (mutation.kind === 'replace') {
    parent[key] = mutation.value;
  } else if (Array.isArray(parent)) {
    parent.splice(Number(key), 1);
  } else {
    delete parent[key];
  }
  return value;
}

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Mutation>({ kind: 'none' }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('replace' as const),
      at: fc.nat(),
      value: nastyValue,
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('extra' as const),
      key: fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('__proto__', 'constructor')),
      value: nastyValue,
    }),
  },
);

/**
 * A body for a JSON schema: a valid one with one thing wrong (a field of the wrong type or
 * nasty, one missing, one too many, anywhere in it), sometimes none, sometimes nothing like
 * the schema at all. One fault at a time gets past validation to the code behind it.
 */
export function fuzzedBody(
  doc: OpenApiDocument,
  schema: SchemaObject | undefined,
  ids: IdSource,
  examples: unknown[] = [],
): fc.Arbitrary<unknown> {
  const resolved = resolveSchema(doc, schema);
  const fromSchema = validValue(doc, resolved, ids);
  // Known-good bodies get past the rules a schema cannot state (a service's inputs, a result
  // schema), so that their one fault is met by the code behind validation.
  const valid = examples.length
    ? fc.oneof(
        { weight: 1, arbitrary: fromSchema },
        { weight: 3, arbitrary: fc.constantFrom(...examples) },
      )
    : fromSchema;
  return fc.oneof(
    { weight: 12, arbitrary: fc.tuple(valid, mutation).map(([v, m]) => mutate(v, m)) },
    {
      weight: 1,
      arbitrary: fc.tuple(valid, mutation, mutation).map(([v, a, b]) => mutate(mutate(v, a), b)),
    },
    { weight: 1, arbitrary: nastyValue },
    { weight: 1, arbitrary: fc.array(valid, { maxLength: 2 }) },
  );
}

/**
 * A cursor that decodes (base64url JSON) to something this API never gave out: mostly one
 * that looks right, with one part wrong (an id that is no UUID, a date outside PostgreSQL's
 * range, a sort value of the wrong type).
 */
export const craftedCursor: fc.Arbitrary<string> = fc
  .oneof(
    {
      weight: 4,
      arbitrary: fc.tuple(
        fc.constantFrom('2024-01-01T00:00:00.000Z', ...EXTREME_DATES),
        fc.oneof(fc.uuid(), nastyString),
      ),
    },
    {
      weight: 3,
      arbitrary: fc.tuple(
        fc.constantFrom('-createdAt', 'createdAt', '-executedAt', 'metrics.score', '-metrics.name'),
        fc.oneof(nastyValue, fc.constantFrom(...EXTREME_DATES)),
        fc.oneof(fc.uuid(), nastyString),
      ),
    },
    { weight: 1, arbitrary: fc.tuple(nastyString, nastyString) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  )
  .map((value) => Buffer.from(JSON.stringify(value)).toString('base64url'));

/** A path segment as sent on the wire: encoded, or raw malformed percent-encoding. */
export function pathSegment(real: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 8, arbitrary: real.length ? fc.constantFrom(...real) : fc.uuid() },
    { weight: 2, arbitrary: fc.uuid() },
    { weight: 3, arbitrary: nastyString.map((s) => encodeURIComponent(toWellFormed(s))) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('%', '%zz', '%E0%A4%A', '%00', '..', '%2e%2e', '%C0%AF'),
    },
  );
}

/** Lone surrogates cannot be URL-encoded; in a URL they stand for themselves as U+FFFD. */
export function toWellFormed(s: string): string {
  return s.replace(
    /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g,
    '\uFFFD',
  );
}

/** A header value that Node will put on the wire (no CR, LF, NUL; latin1 only). */
export function headerSafe(s: string): string {
  return s.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?').slice(0, 8000);
}
