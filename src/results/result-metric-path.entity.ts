import { Entity, PrimaryKey } from '@mikro-orm/core';

/**
 * Which metric paths the results of each service have ever carried (as scalars): written by
 * the `result_metric` triggers, never deleted, so a pair that is absent means that no result
 * of that service has the metric. A sort by a metric within a service that never had it is
 * then the results in id order (every key NULL), without walking `result_metric` or sorting
 * the service's results by a key they all lack.
 */
@Entity({ tableName: 'result_metric_path' })
export class ResultMetricPath {
  @PrimaryKey({ type: 'text' })
  service!: string;

  @PrimaryKey({ type: 'text' })
  path!: string;
}
