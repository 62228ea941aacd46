import { Injectable, Logger } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { CatalogService } from '../catalog/catalog.service';
import { BlobStorage } from '../storage/blob-storage';
import { JobEventsBus } from './job-events.bus';
import { JobState } from './job-state';
import { Job } from './job.entity';

const BATCH = 500;
const DAY_MS = 24 * 3600_000;

/**
 * Removes the files of finished jobs older than their service's retention and marks the jobs
 * expired (the rows stay: who ran what, when, is history). Files go first: a crash between
 * the two leaves an unexpired job without files, which the next run finishes.
 */
@Injectable()
export class RetentionService {
  private readonly logger = new Logger(RetentionService.name);

  constructor(
    private readonly em: EntityManager,
    private readonly catalog: CatalogService,
    private readonly storage: BlobStorage,
    private readonly bus: JobEventsBus,
  ) {}

  async run(now = new Date()): Promise<number> {
    let expired = 0;
    for (const manifest of this.catalog.all()) {
      const cutoff = new Date(now.getTime() - manifest.retentionDays * DAY_MS);
      for (;;) {
        const jobs = await this.em.fork().find(
          Job,
          {
            service: manifest.key,
            state: { $in: [JobState.Succeeded, JobState.Failed, JobState.Cancelled] },
            finishedAt: { $lt: cutoff },
          },
          { fields: ['id'], limit: BATCH, orderBy: { finishedAt: 'asc' } },
        );
        for (const job of jobs) {
          await this.storage.delete(`jobs/${job.id}/`);
          const reason = `files removed after the ${manifest.retentionDays}-day retention`;
          const moved = await this.em.fork().getRepository(Job).transition(job.id, {
            to: JobState.Expired,
            reason,
            actor: 'system:retention',
          });
          if (moved) {
            expired++;
            await this.bus.publish({
              type: 'state',
              jobId: job.id,
              state: JobState.Expired,
              reason,
              at: now.toISOString(),
            });
          }
        }
        if (jobs.length < BATCH) {
          break;
        }
      }
    }
    if (expired > 0) {
      this.logger.log(`retention: ${expired} job(s) expired`);
    }
    return expired;
  }
}
