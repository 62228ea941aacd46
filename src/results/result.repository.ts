import { EntityRepository } from '@mikro-orm/postgresql';
import type { MetricsFilter, ResultSort } from './metrics-filter';
import {
  all,
  filterCondition,
  indexedCondition,
  keyset,
  KIND,
  type ResultReader,
  sortKey,
  sql,
  type Sql,
  visibleTo,
} from './result-sql';
import type { Result, ResultStatus } from './result.entity';

export type { ResultReader };

export interface ResultListSpec {
  reader: ResultReader;
  service?: string;
  deviceId?: string;
  ownerId?: string;
  /** Results carrying every one of these tags. */
  tags?: string[];
  createdSince?: Date;
  createdBefore?: Date;
  executedSince?: Date;
  executedBefore?: Date;
  status?: ResultStatus;
  filters: MetricsFilter[];
  sort: ResultSort;
  /** Keyset: the sort value of the last row seen (as `sortValue` gave it) and its id. */
  after?: { value: unknown; id: string };
  limit: number;
}

export interface ListedResult {
  result: Result;
  /** The row's sort value as JSON: a timestamp string, or the metric (null when missing). */
  sortValue: unknown;
}

/**
 * How the listing uses the `result_metric` index; tests lower them to force each strategy.
 * `probeLimit`: a metrics filter matching fewer index entries than this narrows the query to
 * its ids. `orderedWindow`: how many index entries a metric sort walks, in order, before it
 * gives up and sorts the filtered rows instead.
 */
export const RESULT_QUERY_TUNING = { probeLimit: 2000, orderedWindow: 2500 };

type Row = Record<string, unknown> & { sort_value: unknown };

/**
 * Queries of the result aggregate. The listing runs in PostgreSQL and picks, per request, the
 * plan the indexes make cheap: a selective metrics filter narrows to the ids `result_metric`
 * gives for it; a metric sort walks `result_metric` in order; otherwise the row filters run
 * on an index scan in (createdAt|executedAt, id) order, which stops at the page's end.
 */
export class ResultRepository extends EntityRepository<Result> {
  /** One page in sort order; `limit` rows at most (ask one more to know of a next page). */
  async list(spec: ResultListSpec): Promise<ListedResult[]> {
    const where = this.conditions(spec);
    const narrowing = await this.narrowestFilter(spec.filters);
    if (narrowing) {
      where.push(
        sql('r.id = any(array(select m.result_id from result_metric m where ')
          .add(narrowing)
          .add('))'),
      );
    }
    if (
      spec.sort.key === 'metrics' &&
      spec.service !== undefined &&
      !(await this.serviceHadMetric(spec.service, spec.sort.path))
    ) {
      // No result of this service ever had the metric: every key is NULL, the order is the
      // ids' (all of them after a cursor that has a value).
      return this.withoutMetric(
        spec,
        where,
        spec.limit,
        spec.after?.value === null ? spec.after.id : undefined,
        true,
      );
    }
    if (!narrowing && spec.sort.key === 'metrics' && spec.after?.value !== null) {
      const rows = await this.walkMetricIndex(spec, where);
      if (rows.length === spec.limit) {
        return rows;
      }
      if (await this.walkedAll(spec)) {
        // Every result with the metric that passes the filters is on this page: it goes on
        // with the results without it (NULL keys come last either way), in id order.
        return [...rows, ...(await this.withoutMetric(spec, where, spec.limit - rows.length))];
      }
      // Not a full page within the window: the filters are rare along this metric. Sort the
      // filtered rows themselves.
    }
    if (spec.sort.key === 'metrics' && spec.after?.value === null) {
      // Past the results with the metric: the rest, in id order after the cursor.
      return this.withoutMetric(spec, where, spec.limit, spec.after.id);
    }
    // A metric's key is computed once per row (lateral), not once per use.
    const metric = spec.sort.key === 'metrics';
    const key = metric ? 'k.v' : sortKey(spec.sort).text;
    if (spec.after) {
      where.push(keyset(spec.sort, key, spec.after));
    }
    const dir = spec.sort.descending ? 'desc' : 'asc';
    const query = sql(`select r.*, to_jsonb(${key}) as sort_value from result r `);
    if (metric) {
      query.add('cross join lateral (select ').add(sortKey(spec.sort)).add(' as v) k ');
    }
    query
      .add('where ')
      .add(all(where))
      .add(
        ` order by ${key} ${dir}${metric ? ' nulls last' : ''}, r.id ${dir} limit ?`,
        spec.limit,
      );
    return this.run(query);
  }

  /** Every condition but the keyset, on `result r`. */
  private conditions(spec: ResultListSpec): Sql[] {
    const where = [visibleTo(spec.reader)];
    const cond = (text: string, ...params: unknown[]) => where.push(sql(text, ...params));
    if (spec.service !== undefined) {
      cond('r.service = ?', spec.service);
    }
    if (spec.deviceId !== undefined) {
      cond('r.device_id = ?', spec.deviceId);
    }
    if (spec.ownerId !== undefined) {
      cond('r.owner_id = ?', spec.ownerId);
    }
    if (spec.tags?.length) {
      cond(`r.tags @> array[${spec.tags.map(() => '?').join(', ')}]::text[]`, ...spec.tags);
    }
    if (spec.createdSince) {
      cond('r.created_at >= ?', spec.createdSince);
    }
    if (spec.createdBefore) {
      cond('r.created_at < ?', spec.createdBefore);
    }
    if (spec.executedSince) {
      cond('r.executed_at >= ?', spec.executedSince);
    }
    if (spec.executedBefore) {
      cond('r.executed_at < ?', spec.executedBefore);
    }
    if (spec.status !== undefined) {
      cond('r.status = ?', spec.status);
    }
    where.push(...spec.filters.map(filterCondition));
    return where;
  }

  /**
   * The filter matching the fewest `result_metric` entries, if fewer than the probe limit:
   * counting stops there, so a probe reads at most that many index entries.
   */
  private async narrowestFilter(filters: MetricsFilter[]): Promise<Sql | undefined> {
    let best: { condition: Sql; count: number } | undefined;
    for (const filter of filters) {
      const condition = indexedCondition(filter);
      if (!condition) {
        continue;
      }
      const probe = sql('select count(*)::int as n from (select 1 from result_metric m where ')
        .add(condition)
        .add(' limit ?) x', RESULT_QUERY_TUNING.probeLimit);
      const [{ n }] = await this.getEntityManager()
        .getConnection()
        .execute<Array<{ n: number }>>(probe.text, probe.params);
      if (n < RESULT_QUERY_TUNING.probeLimit && (!best || n < best.count)) {
        best = { condition, count: n };
      }
    }
    return best?.condition;
  }

  /**
   * A metric sort along `result_metric` (path, kind, value, result_id): entries in order from
   * the cursor, each joined to its result and filtered, until the page is full or the window
   * is walked. Results without the metric are not in the index; the caller's plan has them.
   */
  private walkMetricIndex(spec: ResultListSpec, where: Sql[]): Promise<ListedResult[]> {
    const sort = spec.sort as Extract<ResultSort, { key: 'metrics' }>;
    const dir = sort.descending ? 'desc' : 'asc';
    const inner = this.metricEntries(spec).add(
      ` order by m.kind ${dir}, m.value ${dir}, m.result_id ${dir} limit ?`,
      RESULT_QUERY_TUNING.orderedWindow,
    );
    const query = sql('select r.*, s.value as sort_value from (')
      .add(inner)
      .add(') s join result r on r.id = s.result_id where ')
      .add(all(where))
      .add(` order by s.kind ${dir}, s.value ${dir}, s.result_id ${dir} limit ?`, spec.limit);
    return this.run(query);
  }

  /** Whether any result of the service ever carried the metric (result_metric_path). */
  private async serviceHadMetric(service: string, path: string[]): Promise<boolean> {
    const [row] = await this.getEntityManager()
      .getConnection()
      .execute<Array<{ had: boolean }>>(
        'select exists (select 1 from result_metric_path where service = ? and path = ?) as had',
        [service, path.join('.')],
      );
    return row.had;
  }

  /** Whether the walk saw every index entry from the cursor on (fewer than its window). */
  private async walkedAll(spec: ResultListSpec): Promise<boolean> {
    const probe = sql('select count(*)::int as n from (')
      .add(this.metricEntries(spec))
      .add(' limit ?) x', RESULT_QUERY_TUNING.orderedWindow);
    const [{ n }] = await this.getEntityManager()
      .getConnection()
      .execute<Array<{ n: number }>>(probe.text, probe.params);
    return n < RESULT_QUERY_TUNING.orderedWindow;
  }

  /**
   * The filtered results whose sort metric is missing (or not a scalar), in id order.
   * `allLack`: known of every filtered result, so not checked row by row (which would also
   * keep PostgreSQL from walking an index in id order: it cannot guess how many rows pass).
   */
  private withoutMetric(
    spec: ResultListSpec,
    where: Sql[],
    limit: number,
    afterId?: string,
    allLack = false,
  ): Promise<ListedResult[]> {
    const dir = spec.sort.descending ? 'desc' : 'asc';
    const conditions = allLack
      ? [...where]
      : [...where, sql('(').add(sortKey(spec.sort)).add(' is null)')];
    if (afterId !== undefined) {
      conditions.push(sql(`r.id ${spec.sort.descending ? '<' : '>'} ?::uuid`, afterId));
    }
    const query = sql('select r.*, null::jsonb as sort_value from result r where ')
      .add(all(conditions))
      .add(` order by r.id ${dir} limit ?`, limit);
    return this.run(query);
  }

  /** The sort metric's index entries from the cursor on, bounded by filters on that path. */
  private metricEntries(spec: ResultListSpec): Sql {
    const sort = spec.sort as Extract<ResultSort, { key: 'metrics' }>;
    const inner = sql(
      'select m.result_id, m.kind, m.value from result_metric m where m.path = ?',
      sort.path.join('.'),
    );
    // Filters on the sorted path bound the walk itself (sort by sum, keep sum < 0).
    for (const filter of spec.filters) {
      const condition = indexedCondition(filter);
      if (condition && filter.path.join('.') === sort.path.join('.')) {
        inner.add(' and ').add(condition);
      }
    }
    if (spec.after) {
      const value = spec.after.value;
      inner.add(
        ` and (m.kind, m.value, m.result_id) ${sort.descending ? '<' : '>'} (?::smallint, ?::jsonb, ?::uuid)`,
        KIND[typeof value],
        JSON.stringify(value),
        spec.after.id,
      );
    }
    return inner;
  }

  private async run(query: Sql): Promise<ListedResult[]> {
    const em = this.getEntityManager();
    const rows = await em.getConnection().execute<Row[]>(query.text, query.params);
    return rows.map(({ sort_value, ...row }) => ({
      result: em.map<Result>('Result', row),
      sortValue: sort_value,
    }));
  }
}
