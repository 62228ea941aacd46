import { Histogram, type HistogramConfiguration } from 'prom-client';

/** One labelled series of a histogram counted elsewhere. */
export interface HistogramSeries<L extends string> {
  labels: Record<L, string>;
  /** Cumulative counts, one per bucket bound, in the order of the bounds. */
  buckets: number[];
  sum: number;
  count: number;
}

type Snapshot<L extends string> = Awaited<ReturnType<Histogram<L>['get']>>;

/**
 * A Prometheus histogram whose buckets are counted somewhere else (in PostgreSQL) and handed
 * over whole before each scrape: prom-client's Histogram only counts what it observes itself,
 * and a worker process that ran the job has no registry anyone scrapes.
 */
export class PrecomputedHistogram<L extends string> extends Histogram<L> {
  private readonly bounds: readonly number[];
  private readonly metricName: string;
  private readonly metricHelp: string;
  private series: HistogramSeries<L>[] = [];

  constructor(configuration: HistogramConfiguration<L> & { buckets: number[] }) {
    super(configuration);
    this.bounds = [...configuration.buckets];
    this.metricName = configuration.name;
    this.metricHelp = configuration.help;
  }

  /** Replaces every series; a series missing here is no longer exported. */
  set(series: HistogramSeries<L>[]): void {
    for (const s of series) {
      if (s.buckets.length !== this.bounds.length) {
        throw new Error(
          `${this.metricName}: ${s.buckets.length} bucket counts for ${this.bounds.length} bounds`,
        );
      }
    }
    this.series = series;
  }

  override reset(): void {
    this.series = [];
  }

  override get(): Promise<Snapshot<L>> {
    const name = this.metricName;
    const values = this.series.flatMap((s) => [
      ...this.bounds.map((le, i) => ({
        labels: { le, ...s.labels },
        value: s.buckets[i],
        metricName: `${name}_bucket`,
      })),
      { labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: `${name}_bucket` },
      { labels: s.labels, value: s.sum, metricName: `${name}_sum` },
      { labels: s.labels, value: s.count, metricName: `${name}_count` },
    ]);
    return Promise.resolve({
      name,
      help: this.metricHelp,
      type: 'histogram',
      aggregator: 'sum',
      values,
    } as unknown as Snapshot<L>);
  }

  /** What the registry reads when it writes the text format (prom-client's own hook). */
  getForPromString(): Promise<Snapshot<L>> {
    return this.get();
  }
}
