import { join } from 'node:path';
import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { CatalogService } from '../catalog/catalog.service';
import { AppConfig } from '../config';
import type { Job as BullJob } from 'bull';
import { EPHEMERAL_JOB, JobName, JobOf } from '../queue/queue.constants';
import { JobExecutionService } from './job-execution.service';
import { JobQueue } from './job-queue';
import { JobState } from './job-state';
import { Job } from './job.entity';
import { RetentionService } from './retention.service';
import { killOrphans } from './work-dir';

const RECONCILE_EVERY_MS = 30_000;
const RETENTION_EVERY_MS = 3600_000;
/** Younger queued jobs may still be on their way into Redis from the API. */
const RECONCILE_GRACE_MS = 5_000;

/**
 * The worker side of the jobs queue. Concurrency comes from WORKER_CONCURRENCY (known only at
 * boot, so the handler is registered here rather than with a static @Process decorator).
 * The reconciler puts back every queued job Redis does not hold: after a flush or a restart
 * of Redis nothing in PostgreSQL is lost.
 */
@Injectable()
export class JobsWorker implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(JobsWorker.name);
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly config: AppConfig,
    private readonly queue: JobQueue,
    private readonly execution: JobExecutionService,
    private readonly em: EntityManager,
    private readonly catalog: CatalogService,
    private readonly retention: RetentionService,
  ) {}

  onApplicationBootstrap(): void {
    void this.queue.queue.process(
      JobName.RunJob,
      this.config.workerConcurrency,
      (job: BullJob<JobOf<JobName.RunJob>>) => this.execution.handle(job),
    );
    void this.queue.queue.process(JobName.Retention, 1, async () => ({
      expired: await this.retention.run(),
    }));
    void killOrphans(join(this.config.varDir, 'work')).then((n) => {
      if (n > 0) {
        this.logger.warn(`ended ${n} program(s) left running by a worker that died`);
      }
    });
    // Neither waits for Redis: a worker must boot (and keep retrying) while Redis is away.
    void this.scheduleRetention();
    void this.reconcile();
    this.timer = setInterval(() => void this.reconcile(), RECONCILE_EVERY_MS);
    this.timer.unref();
  }

  /** Repeatable jobs are keyed by their schedule: adding it at every boot keeps exactly one. */
  private async scheduleRetention(): Promise<void> {
    try {
      await this.queue.queue.add(
        JobName.Retention,
        {},
        { ...EPHEMERAL_JOB, repeat: { every: RETENTION_EVERY_MS } },
      );
    } catch (err) {
      this.logger.warn(`retention not scheduled: ${(err as Error).message}`);
    }
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** Enqueues every queued job that Redis does not hold; returns how many. */
  async reconcile(): Promise<number> {
    let restored = 0;
    try {
      const queued = await this.em
        .fork()
        .find(
          Job,
          { state: JobState.Queued, updatedAt: { $lt: new Date(Date.now() - RECONCILE_GRACE_MS) } },
          { fields: ['id', 'service'], orderBy: { createdAt: 'asc' }, limit: 10_000 },
        );
      for (const job of queued) {
        const manifest = this.catalog.manifest(job.service);
        if (manifest && !(await this.queue.holds(job.id))) {
          await this.queue.enqueue(job.id, manifest);
          restored++;
        }
      }
      if (restored > 0) {
        this.logger.warn(`re-enqueued ${restored} queued job(s) that Redis did not hold`);
      }
    } catch (err) {
      this.logger.warn(`reconcile failed: ${(err as Error).message}`);
    }
    return restored;
  }
}
