import { Injectable, Logger } from '@nestjs/common';
import { Gauge, Registry } from 'prom-client';
import { withTimeout } from '../common/with-timeout';
import { DeviceMetrics } from './device-metrics';
import { JobMetrics } from './job-metrics';
import { MetricsRegistry, processMetrics } from './metrics.registry';

/** A group of metrics read from PostgreSQL or Redis right before a scrape is answered. */
interface Collector {
  readonly name: string;
  collect(): Promise<void>;
  /** Drops every value, so that a failed read exports nothing rather than stale numbers. */
  reset(): void;
}

const COLLECT_TIMEOUT_MS = 5_000;

/** Answers `GET /metrics`: this app's metrics, the process's, and fresh reads of the stores. */
@Injectable()
export class MetricsService {
  private readonly logger = new Logger(MetricsService.name);
  private readonly collectors: Collector[];
  private readonly collectorUp: Gauge<'collector'>;
  private refreshing?: Promise<void>;

  constructor(
    private readonly registry: MetricsRegistry,
    jobs: JobMetrics,
    devices: DeviceMetrics,
  ) {
    this.collectors = [jobs, devices];
    this.collectorUp = new Gauge({
      name: 'labgate_metrics_collector_up',
      help: 'Whether the last scrape could read this group of metrics (0: its values are missing).',
      labelNames: ['collector'],
      registers: [registry],
    });
  }

  /** The text exposition format. */
  async scrape(): Promise<string> {
    await this.refresh();
    return Registry.merge([processMetrics(), this.registry]).metrics();
  }

  /**
   * Reads every collector once; concurrent scrapes share one read. A store that fails or hangs
   * does not fail the scrape: its metrics are left out and its collector reports 0, so that
   * the process metrics (and the alert on the collector) still reach Prometheus.
   */
  private refresh(): Promise<void> {
    this.refreshing ??= Promise.all(
      this.collectors.map(async (collector) => {
        try {
          await withTimeout(collector.collect(), COLLECT_TIMEOUT_MS, `${collector.name} metrics`);
          this.collectorUp.set({ collector: collector.name }, 1);
        } catch (err) {
          this.logger.warn(`metrics of ${collector.name} not read: ${(err as Error).message}`);
          collector.reset();
          this.collectorUp.set({ collector: collector.name }, 0);
        }
      }),
    )
      .then(() => undefined)
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }
}
