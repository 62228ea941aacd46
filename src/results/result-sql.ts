/**
 * The SQL pieces of the result listing, as parameterised fragments on `result r` and
 * `result_metric m`. The repository decides which plan to assemble from them.
 */
import type { FilterValue, MetricsFilter, ResultSort } from './metrics-filter';

/** Who is listing: decides which rows exist for them at all (see `visibleTo`). */
export interface ResultReader {
  userId?: string;
  admin: boolean;
}

/** SQL text with `?` placeholders and their values, built up piece by piece. */
export class Sql {
  private readonly parts: string[] = [];
  readonly params: unknown[] = [];

  add(text: string | Sql, ...params: unknown[]): this {
    if (text instanceof Sql) {
      this.parts.push(text.text);
      this.params.push(...text.params);
    } else {
      this.parts.push(text);
      this.params.push(...params);
    }
    return this;
  }

  get text(): string {
    return this.parts.join('');
  }
}

export const sql = (text: string, ...params: unknown[]) => new Sql().add(text, ...params);

/** `a and b and …` of conditions. */
export function all(conditions: Sql[]): Sql {
  const out = new Sql();
  conditions.forEach((c, i) => out.add(i === 0 ? '' : ' and ').add(c));
  return out.add(conditions.length === 0 ? 'true' : '');
}

/** A PostgreSQL text[] literal of identifiers (parsed paths hold nothing that needs quoting). */
const pathLiteral = (path: string[]) => `{${path.join(',')}}`;

/** `{"a":{"b":value}}`: the containment document of `metrics.a.b = value`. */
function containing(path: string[], value: unknown): string {
  return JSON.stringify(path.reduceRight<unknown>((inner, key) => ({ [key]: inner }), value));
}

/** jsonb orders strings before numbers before booleans; `result_metric.kind` says which. */
export const KIND: Record<string, number> = { string: 1, number: 2, boolean: 3 };

const SQL_OPS: Record<string, string> = {
  '=': '=',
  '!=': '<>',
  '<': '<',
  '<=': '<=',
  '>': '>',
  '>=': '>=',
};

const jsonOf = (value: FilterValue) =>
  value.kind === 'number' ? value.text : JSON.stringify(value.value);

/**
 * One metrics filter as a condition on the row. Values are bound, never spliced. A comparison
 * only holds where the path has a value of the compared type: the `case` guards keep a string
 * in a numeric comparison (or a number in a text one) from failing the cast, and simply not
 * match. `=` is jsonb containment, which the GIN index (jsonb_path_ops) answers.
 */
export function filterCondition(filter: MetricsFilter): Sql {
  const path = pathLiteral(filter.path);
  const at = 'r.metrics #> ?::text[]';
  const { op, value } = filter;
  if (op === '=') {
    return sql('r.metrics @> ?::jsonb', containing(filter.path, value.value));
  }
  if (op === '~') {
    // Arrays: holds the value as an element; text: holds it as a substring.
    return sql(
      `(case jsonb_typeof(${at}) when 'array' then ${at} @> ?::jsonb ` +
        `when 'string' then strpos(r.metrics #>> ?::text[], ?) > 0 else false end)`,
      path,
      path,
      JSON.stringify([value.value]),
      path,
      value.kind === 'number' ? value.text : String(value.value),
    );
  }
  const sqlOp = SQL_OPS[op];
  switch (value.kind) {
    case 'number':
      return sql(
        `(case when jsonb_typeof(${at}) = 'number' then (${at})::numeric end) ${sqlOp} ?::numeric`,
        path,
        path,
        value.text,
      );
    case 'string':
      return sql(
        `(case when jsonb_typeof(${at}) = 'string' then r.metrics #>> ?::text[] end) ${sqlOp} ?`,
        path,
        path,
        value.value,
      );
    case 'boolean':
      return sql(
        `(case when jsonb_typeof(${at}) = 'boolean' then ${at} end) ${sqlOp} ?::jsonb`,
        path,
        path,
        JSON.stringify(value.value),
      );
  }
}

/**
 * The same filter as a condition on `result_metric m` (one index range), when it has one:
 * comparisons of a number or a string, and boolean equality. `!=` and `~` have none.
 */
export function indexedCondition(filter: MetricsFilter): Sql | undefined {
  const { op, value } = filter;
  if (op === '~' || op === '!=' || (value.kind === 'boolean' && op !== '=')) {
    return undefined;
  }
  return sql(
    `m.path = ? and m.kind = ? and m.value ${SQL_OPS[op]} ?::jsonb`,
    filter.path.join('.'),
    KIND[value.kind],
    jsonOf(value),
  );
}

/**
 * Which rows a reader may know of. Anonymous: published and public. Signed in: published and
 * not private, or their own; plus their own under review. Admins: everything.
 * `canSee` in result-access.ts is the same rule for one loaded result.
 */
export function visibleTo(reader: ResultReader): Sql {
  if (reader.admin) {
    return sql('true');
  }
  if (!reader.userId) {
    return sql(`(r.status = 'published' and r.visibility = 'public')`);
  }
  return sql(
    `((r.status = 'published' and (r.visibility <> 'private' or r.owner_id = ?)) ` +
      `or (r.status = 'under_review' and r.owner_id = ?))`,
    reader.userId,
    reader.userId,
  );
}

/** The sort key of a row; a metric that is missing, null, an object or an array is NULL. */
export function sortKey(sort: ResultSort): Sql {
  switch (sort.key) {
    case 'createdAt':
      return sql('r.created_at');
    case 'executedAt':
      return sql('r.executed_at');
    case 'metrics': {
      const path = pathLiteral(sort.path);
      return sql(
        `(case when jsonb_typeof(r.metrics #> ?::text[]) in ('string', 'number', 'boolean') ` +
          `then r.metrics #> ?::text[] end)`,
        path,
        path,
      );
    }
  }
}

/**
 * Rows after the cursor in (key, id) order; NULL keys come last in both directions. `key` is
 * the sort key as SQL without parameters (a column, or the lateral `k.v` of a metric).
 */
export function keyset(sort: ResultSort, key: string, after: { value: unknown; id: string }): Sql {
  const cmp = sort.descending ? '<' : '>';
  if (sort.key !== 'metrics') {
    return sql(`(${key}, r.id) ${cmp} (?::timestamptz, ?::uuid)`, after.value, after.id);
  }
  if (after.value === null) {
    return sql(`(${key} is null and r.id ${cmp} ?::uuid)`, after.id);
  }
  const value = JSON.stringify(after.value);
  return sql(
    `(${key} ${cmp} ?::jsonb or (${key} = ?::jsonb and r.id ${cmp} ?::uuid) or ${key} is null)`,
    value,
    value,
    after.id,
  );
}
