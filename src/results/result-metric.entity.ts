import { Entity, Index, ManyToOne, PrimaryKey, Property } from '@mikro-orm/core';
import { Result } from './result.entity';

/**
 * One scalar of a result's metrics (`metrics.model.depth` → path `model.depth`), so that range
 * filters and sorts on any metric path have a btree index. Written by a trigger on `result`
 * (see the migration), never by the application: metrics are set once, at creation.
 * `kind` orders types as jsonb does (1 string, 2 number, 3 boolean), so (kind, value) sorts
 * like the jsonb value and a numeric range is one index range.
 */
@Entity({ tableName: 'result_metric' })
@Index({ properties: ['path', 'kind', 'value', 'result'] })
export class ResultMetric {
  @ManyToOne(() => Result, { primary: true, deleteRule: 'cascade' })
  result!: Result;

  @PrimaryKey({ type: 'text' })
  path!: string;

  @Property({ type: 'smallint' })
  kind!: number;

  @Property({ type: 'json' })
  value!: unknown;
}
