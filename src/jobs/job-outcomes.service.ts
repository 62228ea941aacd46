import { jobsChanged } from './job-view-cache';
import { Injectable, Logger } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { CatalogService } from '../catalog/catalog.service';
import { JobEventsBus } from './job-events.bus';
import { isFinal, JobState } from './job-state';
import { Job } from './job.entity';
import type { JobPatch, TransitionResult } from './job.repository';
import { JobScheduler } from './scheduling/job-scheduler';

export interface Move {
  to: JobState;
  /** A user id, `worker:<host:pid>`, `device:<name>`, `scheduler` or `system`. */
  actor: string;
  actorUserId?: string;
  reason?: string;
  patch?: JobPatch;
  from?: JobState[];
  onDevice?: string;
  inAssignment?: number;
  countsAttempt?: boolean;
}

/**
 * How every process moves a job it works on: the guarded transition, then the live update for
 * event streams, then a scheduling pass when a slot was freed or a job went back to waiting.
 * Retrying or failing after a lost or failed attempt is decided here, once.
 */
@Injectable()
export class JobOutcomes {
  private readonly logger = new Logger(JobOutcomes.name);

  constructor(
    private readonly em: EntityManager,
    private readonly catalog: CatalogService,
    private readonly bus: JobEventsBus,
    private readonly scheduler: JobScheduler,
  ) {}

  async move(id: string, move: Move): Promise<TransitionResult | undefined> {
    const moved = await this.em.fork().getRepository(Job).transition(id, move);
    if (moved) {
      await this.bus.publish({
        type: 'state',
        jobId: id,
        state: move.to,
        reason: move.reason,
        at: new Date().toISOString(),
      });
      if (isFinal(move.to) || move.to === JobState.Queued) {
        this.scheduler.kick();
      }
    }
    return moved;
  }

  /**
   * After an attempt failed or was lost: back to the queue (off its device, after the
   * service's backoff) while the retry policy allows another attempt, else failed.
   */
  async retryOrFail(
    job: Pick<Job, 'id' | 'service' | 'attempts'>,
    reason: string,
    actor: string,
    from: JobState[],
    onDevice?: string,
  ): Promise<TransitionResult | undefined> {
    const retry = this.catalog.manifest(job.service)?.retry ?? { attempts: 1, backoffSeconds: 0 };
    const allowed = Math.max(1, retry.attempts);
    if (job.attempts >= allowed) {
      return this.move(job.id, {
        to: JobState.Failed,
        actor,
        reason,
        patch: { finishedAt: new Date() },
        from,
        onDevice,
      });
    }
    const delayMs = retry.backoffSeconds * 1000 * 2 ** Math.max(0, job.attempts - 1);
    return this.move(job.id, {
      to: JobState.Queued,
      actor,
      reason: `${reason}; retrying (attempt ${job.attempts + 1} of ${allowed})`,
      patch: { device: null, notBefore: new Date(Date.now() + delayMs), progress: 0 },
      from,
      onDevice,
    });
  }

  async progress(jobId: string, progress: number, message?: string): Promise<void> {
    try {
      await this.em
        .fork()
        .nativeUpdate(
          Job,
          { id: jobId, state: JobState.Running },
          { progress, progressMessage: message },
        );
      jobsChanged(jobId);
      await this.bus.publish({
        type: 'progress',
        jobId,
        progress,
        message,
        at: new Date().toISOString(),
      });
    } catch (err) {
      this.logger.warn(`job ${jobId}: progress not saved: ${(err as Error).message}`);
    }
  }
}
