import { Injectable } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { JobState } from '../jobs/job-state';
import { JobsService } from '../jobs/jobs.service';
import { MetricsRegistry } from './metrics.registry';
import { PrecomputedHistogram } from './precomputed-histogram';

/** Upper bounds (seconds) of the job run-time histogram: from quick checks to day-long runs. */
export const RUN_TIME_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400];

/**
 * Job metrics, read from PostgreSQL at each scrape: every API process reports the same truth,
 * whichever worker process ran the jobs (workers have no HTTP listener to scrape).
 */
@Injectable()
export class JobMetrics {
  readonly name = 'jobs';
  private readonly jobs: Gauge<'service' | 'state'>;
  private readonly awaitingPlacement: Gauge<'service'>;
  private readonly runTime: PrecomputedHistogram<'service'>;

  constructor(
    registry: MetricsRegistry,
    private readonly service: JobsService,
  ) {
    this.jobs = new Gauge({
      name: 'labgate_jobs',
      help: 'Jobs by service and state (every state is listed for each service that has jobs).',
      labelNames: ['service', 'state'],
      registers: [registry],
    });
    this.awaitingPlacement = new Gauge({
      name: 'labgate_jobs_awaiting_placement',
      help: 'Jobs queued in PostgreSQL that no device has taken yet, by service.',
      labelNames: ['service'],
      registers: [registry],
    });
    this.runTime = new PrecomputedHistogram({
      name: 'labgate_job_run_duration_seconds',
      help: 'Run time of finished job runs (running to succeeded, failed or cancelled), by service.',
      labelNames: ['service'],
      buckets: RUN_TIME_BUCKETS,
      registers: [registry],
    });
  }

  async collect(): Promise<void> {
    const [counts, runTimes] = await Promise.all([
      this.service.countByServiceAndState(),
      this.service.runTimeHistogram(RUN_TIME_BUCKETS),
    ]);
    this.reset();
    for (const service of new Set(counts.map((c) => c.service))) {
      for (const state of Object.values(JobState)) {
        this.jobs.set({ service, state }, 0);
      }
      this.awaitingPlacement.set({ service }, 0);
    }
    for (const { service, state, count } of counts) {
      this.jobs.set({ service, state }, count);
      if (state === JobState.Queued) {
        this.awaitingPlacement.set({ service }, count);
      }
    }
    this.runTime.set(
      runTimes.map((r) => ({
        labels: { service: r.service },
        buckets: r.buckets,
        sum: r.sumSeconds,
        count: r.count,
      })),
    );
  }

  reset(): void {
    this.jobs.reset();
    this.awaitingPlacement.reset();
    this.runTime.reset();
  }
}
