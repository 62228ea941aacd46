/**
 * The query language of GET /results: `filter=metrics.a.b<op><value>` (repeatable, all must
 * hold) and `sort=[-]createdAt|executedAt|metrics.a.b`. Parsed here into plain values; the
 * repository turns them into parameterised SQL on the jsonb column.
 */
import { quoteInput } from '../common/caller-input';

export const FILTER_OPS = ['>=', '<=', '!=', '=', '<', '>', '~'] as const;
export type FilterOp = (typeof FILTER_OPS)[number];

export type FilterValue =
  | { kind: 'number'; value: number; text: string }
  | { kind: 'string'; value: string }
  | { kind: 'boolean'; value: boolean };

export interface MetricsFilter {
  /** Path below `metrics`: `metrics.a.b` is `['a', 'b']`. */
  path: string[];
  op: FilterOp;
  value: FilterValue;
}

export type ResultSort =
  | { key: 'createdAt' | 'executedAt'; descending: boolean }
  | { key: 'metrics'; path: string[]; descending: boolean };

export const MAX_PATH_DEPTH = 10;
export const MAX_VALUE_LENGTH = 200;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const OPERATOR_START = /^[=!<>~]/;

/** A filter or sort that is not in the language; the message names it and says why. */
export class QuerySyntaxError extends Error {
  constructor(
    readonly field: 'filter' | 'sort',
    readonly input: string,
    reason: string,
  ) {
    super(`${field} ${quoteInput(input)} ${reason}`);
    this.name = 'QuerySyntaxError';
  }
}

/** `metrics.a.b` → `['a', 'b']`, or why not (undefined reason: fine). */
function parsePath(text: string): { path?: string[]; reason?: string } {
  const segments = text.split('.');
  if (segments[0] !== 'metrics' || segments.length < 2) {
    return { reason: 'must start with a metrics path such as metrics.sum' };
  }
  const path = segments.slice(1);
  if (path.length > MAX_PATH_DEPTH) {
    return { reason: `has a path deeper than ${MAX_PATH_DEPTH} levels` };
  }
  const bad = path.find((s) => !IDENTIFIER.test(s));
  if (bad !== undefined) {
    return {
      reason:
        `has the path segment ${quoteInput(bad)}; segments are identifiers ` +
        '(letters, digits and _, not starting with a digit)',
    };
  }
  return { path };
}

function parseValue(filter: string, raw: string): FilterValue {
  const fail = (reason: string) => new QuerySyntaxError('filter', filter, reason);
  if (raw === '') {
    throw fail('has no value after its operator (write "" for the empty string)');
  }
  if (raw.length > MAX_VALUE_LENGTH) {
    throw fail(`has a value longer than ${MAX_VALUE_LENGTH} characters`);
  }
  if (raw.startsWith('"')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw fail('has a quoted value that is not a JSON string (close the quote, escape with \\)');
    }
    if (typeof parsed !== 'string') {
      throw fail('has a quoted value that is not a JSON string');
    }
    return { kind: 'string', value: parsed };
  }
  if (JSON_NUMBER.test(raw)) {
    const value = Number(raw);
    if (!Number.isFinite(value)) {
      throw fail('has a number too large to compare');
    }
    return { kind: 'number', value, text: raw };
  }
  if (raw === 'true' || raw === 'false') {
    return { kind: 'boolean', value: raw === 'true' };
  }
  if (OPERATOR_START.test(raw)) {
    throw fail(
      `has a value starting with ${JSON.stringify(raw[0])}: quote it, or fix the operator`,
    );
  }
  return { kind: 'string', value: raw };
}

/**
 * `metrics.sum>3`, `metrics.model.name=resnet`, `metrics.name="a b"`, `metrics.tags~gpu`.
 * Numbers (JSON syntax) compare numerically, `true`/`false` as booleans (= and != only), all
 * else as text; quote a value to force text (`metrics.version="2"`).
 */
export function parseMetricsFilter(text: string): MetricsFilter {
  const fail = (reason: string) => new QuerySyntaxError('filter', text, reason);
  const match = /^([^=!<>~]*?)\s*(>=|<=|!=|=|<|>|~)\s*(.*)$/s.exec(text);
  if (!match) {
    throw fail(`has no operator; use one of ${FILTER_OPS.join(' ')} (e.g. metrics.sum>3)`);
  }
  const [, pathText, op, rawValue] = match;
  const { path, reason } = parsePath(pathText.trim());
  if (!path) {
    throw fail(reason!);
  }
  const value = parseValue(text, rawValue.trim());
  if (value.kind === 'boolean' && !['=', '!=', '~'].includes(op)) {
    throw fail(`compares a boolean with ${op}; booleans take = or != only`);
  }
  return { path, op: op as FilterOp, value };
}

/** `createdAt`, `-createdAt`, `executedAt`, `metrics.a.b`, `-metrics.a.b`; `-` is descending. */
export function parseSort(text: string): ResultSort {
  const descending = text.startsWith('-');
  const key = descending ? text.slice(1) : text;
  if (key === 'createdAt' || key === 'executedAt') {
    return { key, descending };
  }
  if (key.startsWith('metrics')) {
    const { path, reason } = parsePath(key);
    if (!path) {
      throw new QuerySyntaxError('sort', text, reason!);
    }
    return { key: 'metrics', path, descending };
  }
  throw new QuerySyntaxError(
    'sort',
    text,
    'must be createdAt, executedAt or a metrics path such as metrics.sum, with - in front for descending',
  );
}

/** The sort as text again (cursors remember which sort they belong to). */
export function formatSort(sort: ResultSort): string {
  const key = sort.key === 'metrics' ? `metrics.${sort.path.join('.')}` : sort.key;
  return `${sort.descending ? '-' : ''}${key}`;
}
