import fc from 'fast-check';
import { gzipSync } from 'node:zlib';
import {
  craftedCursor,
  fuzzedBody,
  headerSafe,
  type IdSource,
  MB,
  nastyString,
  nastyValue,
  pathSegment,
  toWellFormed,
  validValue,
} from './arbitraries';
import type { Call, Headers } from './http';
import { multipart } from './multipart';
import type { OpenApiDocument, Operation, ParameterObject, SchemaObject } from './openapi';

/** A generated request: what is sent, and how it was made (for the failure report). */
export interface FuzzRequest extends Call {
  /** Which credentials and which body encoding, in words. */
  label: string;
}

export interface FuzzTargets extends IdSource {
  /** Named credentials, valid and invalid, as request headers. */
  credentials: Record<string, Headers>;
  /** The names of the credentials that get into this operation (a user's, a device's…). */
  validCredentials(op: Operation): string[];
  /** Request bodies known to be valid for this operation (`METHOD /path`), to mutate. */
  examples(key: string): unknown[];
  /** Real values for a path parameter of this path (ids of objects that exist). */
  pathValues(path: string, param: string): string[];
  /**
   * Query parameters an operation gets when the generated query leaves them out: a long-poll's
   * `wait` would otherwise hold every request for its default 30 s.
   */
  queryDefaults(key: string): Record<string, string>;
  /** Query parameters an operation always gets, whatever was generated for them. */
  queryOverrides(key: string): Record<string, string>;
}

const JSON_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'application/json; charset=utf-16',
  'application/json; charset=nope',
  'application/merge-patch+json',
  'application/vnd.api+json',
  'APPLICATION/JSON',
];

type Encoded = { body?: Buffer | string; headers: Headers; how: string };

/** A body value in one of the encodings a client (or an attacker) might use. */
function encodings(value: unknown): fc.Arbitrary<Encoded> {
  const text = JSON.stringify(value) ?? 'null';
  const json = (type: string): Encoded => ({
    body: text,
    headers: { 'Content-Type': type },
    how: `json(${type})`,
  });
  const flat = (v: unknown) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));
  const entries =
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.entries(value as Record<string, unknown>)
      : [['value', value] as [string, unknown]];
  return fc.oneof(
    // Mostly what a client sends, so that the body's own fault is what the server meets.
    { weight: 30, arbitrary: fc.constant(json('application/json')) },
    { weight: 4, arbitrary: fc.constantFrom(...JSON_TYPES).map(json) },
    {
      weight: 2,
      arbitrary: fc.nat({ max: Math.max(0, text.length - 1) }).chain((cut) =>
        fc.constantFrom<Encoded>(
          {
            body: text.slice(0, cut),
            headers: { 'Content-Type': 'application/json' },
            how: 'truncated json',
          },
          {
            body: `${text},`,
            headers: { 'Content-Type': 'application/json' },
            how: 'trailing garbage',
          },
          {
            body: `\uFEFF${text}`,
            headers: { 'Content-Type': 'application/json' },
            how: 'json with BOM',
          },
          {
            body: "{'a': NaN}",
            headers: { 'Content-Type': 'application/json' },
            how: 'not json',
          },
          {
            body: '[[[[[[[[[[[[',
            headers: { 'Content-Type': 'application/json' },
            how: 'open arrays',
          },
        ),
      ),
    },
    {
      weight: 1,
      arbitrary: fc.constant<Encoded>({
        body: '['.repeat(200_000) + ']'.repeat(200_000),
        headers: { 'Content-Type': 'application/json' },
        how: 'json nested 200000 deep',
      }),
    },
    {
      weight: 2,
      arbitrary: fc.constant<Encoded>({
        body: new URLSearchParams(
          entries.map(([k, v]): [string, string] => [toWellFormed(k), toWellFormed(flat(v))]),
        ).toString(),
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        how: 'urlencoded',
      }),
    },
    {
      weight: 1,
      arbitrary: fc.constant<Encoded>({
        body: 'a[b][c][d][e][f]=1&a[__proto__][x]=1&a[0]=2&a[]=3&' + 'x[]=1&'.repeat(2000),
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        how: 'urlencoded nested',
      }),
    },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom('text/plain', 'application/xml', 'application/octet-stream', '')
        .map((type): Encoded => ({
          body: text,
          headers: type ? { 'Content-Type': type } : {},
          how: `as ${type || 'no content type'}`,
        })),
    },
    {
      weight: 2,
      arbitrary: fc.boolean().map((asFile): Encoded => {
        const form = multipart(
          entries.map(([name, v]) => ({
            name: toWellFormed(name).replace(/["\r\n]/g, '_'),
            body: toWellFormed(flat(v)),
            ...(asFile ? { filename: 'data.bin', contentType: 'application/octet-stream' } : {}),
          })),
        );
        return {
          body: form.body,
          headers: { 'Content-Type': form.contentType },
          how: asFile ? 'multipart files' : 'multipart fields',
        };
      }),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom('gzip', 'deflate', 'br', 'x-nope').chain((encoding) =>
        fc.constantFrom<Encoded>(
          {
            body: Buffer.from('definitely not compressed'),
            headers: { 'Content-Type': 'application/json', 'Content-Encoding': encoding },
            how: `bogus ${encoding}`,
          },
          {
            body: gzipSync(Buffer.from(text)),
            headers: { 'Content-Type': 'application/json', 'Content-Encoding': encoding },
            how: `gzip as ${encoding}`,
          },
        ),
      ),
    },
  );
}

/** JSON bodies of about 1 MB: under the 1 MiB limit, and over it. */
const hugeJson = fc
  .constantFrom(
    { size: Math.floor(1.04 * 1_000_000), how: 'json with a 1.04 MB string (under the limit)' },
    { size: Math.floor(1.5 * MB), how: 'json of 1.5 MiB (over the limit)' },
  )
  .map(({ size, how }): Encoded => ({
    body: JSON.stringify({ service: 'float-add', name: 'x'.repeat(size), inputs: { a: 1 } }),
    headers: { 'Content-Type': 'application/json' },
    how,
  }));

/** A value a client that follows the document would send for a query parameter. */
function validQueryValue(doc: OpenApiDocument, p: ParameterObject, ids: IdSource) {
  const real = ids.realFor(p.name);
  return real.length
    ? fc.constantFrom(...real)
    : validValue(doc, p.schema, ids, p.name).map((v) => String(v));
}

/** A value to put in a parameter's place instead. */
function wrongQueryValue(p: ParameterObject) {
  return p.name === 'cursor'
    ? fc.oneof({ weight: 3, arbitrary: craftedCursor }, { weight: 1, arbitrary: nastyString })
    : fc.oneof(nastyString, fc.constantFrom('-1', '0', '1e3', '2147483648', '1.5', 'true'));
}

type QueryMutation =
  | { kind: 'none' }
  | { kind: 'replace' | 'repeat' | 'nest'; at: number; value: string }
  | { kind: 'unknown'; key: string; value: string };

/**
 * A query string: the documented parameters with valid values (each present or not), then at
 * most one thing wrong: a parameter's value, a parameter repeated or nested (`a[x]=`), or an
 * unknown parameter.
 */
function queryOf(
  doc: OpenApiDocument,
  params: ParameterObject[],
  ids: IdSource,
  defaults: Record<string, string>,
  overrides: Record<string, string>,
) {
  const valid = fc.tuple(
    ...params.map((p) =>
      fc.option(validQueryValue(doc, p, ids), { nil: undefined, freq: 2 }).map((v) => [p.name, v]),
    ),
  );
  const wrong = params.length
    ? fc.nat({ max: params.length - 1 }).chain((at) =>
        fc.oneof(
          {
            weight: 6,
            arbitrary: wrongQueryValue(params[at]).map((value): QueryMutation => ({
              kind: 'replace',
              at,
              value,
            })),
          },
          {
            weight: 1,
            arbitrary: validQueryValue(doc, params[at], ids).map((value): QueryMutation => ({
              kind: 'repeat',
              at,
              value,
            })),
          },
          {
            weight: 1,
            arbitrary: nastyString.map((value): QueryMutation => ({ kind: 'nest', at, value })),
          },
        ),
      )
    : fc.constant<QueryMutation>({ kind: 'none' });
  const mutation = fc.oneof(
    { weight: 3, arbitrary: fc.constant<QueryMutation>({ kind: 'none' }) },
    { weight: 6, arbitrary: wrong },
    {
      weight: 1,
      arbitrary: fc
        .tuple(nastyString, nastyString)
        .map(([key, value]): QueryMutation => ({ kind: 'unknown', key, value })),
    },
  );
  return fc.tuple(valid, mutation).map(([values, m]) => {
    const pairs = (values as Array<[string, string | undefined]>).filter(
      (pair): pair is [string, string] => pair[1] !== undefined,
    );
    if (m.kind === 'unknown') {
      pairs.push([m.key, m.value]);
    } else if (m.kind !== 'none') {
      const name = params[m.at].name;
      const others = pairs.filter(([k]) => k !== name);
      const own = pairs.find(([k]) => k === name);
      pairs.length = 0;
      pairs.push(...others);
      if (m.kind === 'replace') {
        pairs.push([name, m.value]);
      } else if (m.kind === 'repeat') {
        pairs.push([name, own?.[1] ?? m.value], [name, m.value]);
      } else {
        pairs.push([`${name}[x]`, m.value]);
      }
    }
    for (const [name, value] of Object.entries(defaults)) {
      if (!pairs.some(([k]) => k.startsWith(name))) {
        pairs.push([name, value]);
      }
    }
    for (const [name, value] of Object.entries(overrides)) {
      const others = pairs.filter(([k]) => !k.startsWith(name));
      pairs.length = 0;
      pairs.push(...others, [name, value]);
    }
    return pairs
      .map(
        ([k, v]) => `${encodeURIComponent(toWellFormed(k))}=${encodeURIComponent(toWellFormed(v))}`,
      )
      .join('&');
  });
}

/** The request body schema of an operation (JSON first), if it takes one. */
function bodySchemaOf(op: Operation): SchemaObject | undefined {
  const content = op.operation.requestBody?.content;
  return content?.['application/json']?.schema ?? content?.['multipart/form-data']?.schema;
}

/** Requests for one operation: every part of it varied, credentials included. */
export function requestsFor(
  doc: OpenApiDocument,
  op: Operation,
  targets: FuzzTargets,
): fc.Arbitrary<FuzzRequest> {
  const params = op.operation.parameters ?? [];
  const pathParams = [...op.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
  const path = fc
    .tuple(...pathParams.map((name) => pathSegment(targets.pathValues(op.path, name))))
    .map((values) => pathParams.reduce((p, name, i) => p.replace(`{${name}}`, values[i]), op.path));
  const query = queryOf(
    doc,
    params.filter((p) => p.in === 'query'),
    targets,
    targets.queryDefaults(op.key),
    targets.queryOverrides(op.key),
  );
  // Documented headers (Idempotency-Key, X-Job-Token) valid or not, and a request id.
  const headerParams = params.filter((p) => p.in === 'header');
  const headerValue = (p: ParameterObject) =>
    fc
      .oneof(validQueryValue(doc, p, targets), wrongQueryValue(p))
      .map((v): [string, string] => [p.name, headerSafe(v)]);
  const extraHeaders = fc
    .tuple(
      fc.subarray(headerParams).chain((chosen) => fc.tuple(...chosen.map(headerValue))),
      fc.option(
        nastyString.map((v): [string, string] => ['X-Request-Id', headerSafe(v)]),
        { nil: undefined },
      ),
    )
    .map(([chosen, requestId]) =>
      Object.fromEntries([...chosen, ...(requestId ? [requestId] : [])]),
    );
  // Mostly credentials that get in, so that requests reach the code behind the guards.
  const credential = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...targets.validCredentials(op)) },
    { weight: 1, arbitrary: fc.constantFrom(...Object.keys(targets.credentials)) },
  );
  const schema = bodySchemaOf(op);
  const withBody = !['GET', 'DELETE'].includes(op.method);
  const body: fc.Arbitrary<Encoded> = withBody
    ? fc.oneof(
        {
          weight: 20,
          arbitrary: fuzzedBody(doc, schema, targets, targets.examples(op.key)).chain(encodings),
        },
        { weight: 1, arbitrary: hugeJson },
        { weight: 1, arbitrary: fc.constant<Encoded>({ headers: {}, how: 'no body' }) },
      )
    : fc.oneof(
        { weight: 8, arbitrary: fc.constant<Encoded>({ headers: {}, how: 'no body' }) },
        { weight: 1, arbitrary: nastyValue.chain(encodings) },
      );
  return fc
    .record({ path, query, extraHeaders, credential, body })
    .map(({ path, query, extraHeaders, credential, body }) => ({
      method: op.method,
      path: query ? `${path}?${query}` : path,
      headers: { ...targets.credentials[credential], ...extraHeaders, ...body.headers },
      body: body.body,
      label: `as ${credential}, body ${body.how}`,
    }));
}
