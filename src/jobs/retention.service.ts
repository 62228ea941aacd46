import { join } from 'node:path';
import { Injectable, Logger } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { CatalogService } from '../catalog/catalog.service';
import { AppConfig } from '../config';
import { BlobStorage } from '../storage/blob-storage';
import { JobEventsBus } from './job-events.bus';
import { JobState } from './job-state';
import { Job } from './job.entity';
import { removeAbandonedWorkDirs, removeStaleScratch } from './work-dir';

const BATCH = 500;
const DAY_MS = 24 * 3600_000;
/**
 * Files left by a process killed mid-request are removed once nothing in them changed for this
 * long. A submission stores its files before its job row commits, and an upload lasts minutes at
 * most (Node ends a request after 5 minutes), so an hour leaves every request in flight alone.
 */
export const ORPHAN_AGE_MS = 3600_000;
const JOB_PREFIX = /^jobs\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\//;

/** What a sweep removed: storage prefixes (`jobs/<id>/`) and local entries, by path. */
export interface SweptOrphans {
  storage: string[];
  local: string[];
}

/**
 * Removes the files of finished jobs older than their service's retention and marks the jobs
 * expired (the rows stay: who ran what, when, is history). Files go first: a crash between
 * the two leaves an unexpired job without files, which the next run finishes. Then it sweeps
 * what killed processes left: the files of submissions whose row never committed, and scratch
 * and work directories nobody will come back to.
 */
@Injectable()
export class RetentionService {
  private readonly logger = new Logger(RetentionService.name);

  constructor(
    private readonly em: EntityManager,
    private readonly catalog: CatalogService,
    private readonly storage: BlobStorage,
    private readonly bus: JobEventsBus,
    private readonly config: AppConfig,
  ) {}

  /** The hourly pass: expiry (as of `now`), then the orphan sweep. Returns the jobs expired. */
  async run(now = new Date()): Promise<number> {
    const expired = await this.expire(now);
    await this.sweepOrphans();
    return expired;
  }

  async expire(now = new Date()): Promise<number> {
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

  /**
   * What processes killed mid-request left, untouched for ORPHAN_AGE_MS (by the real clock,
   * whatever `now` the expiry was asked for): `jobs/<id>/` in storage with no job row (an upload
   * whose first files were stored), and, on this machine, `VAR_DIR/tmp` entries (a payload being
   * unpacked, an agent's inputs being packed) and work directories of runs that will not come
   * back. The age counts from the newest file under each, so a prefix or directory still being
   * written to is left alone.
   */
  async sweepOrphans(): Promise<SweptOrphans> {
    const before = Date.now() - ORPHAN_AGE_MS;
    const storage = await this.sweepStorage(before);
    const scratch = await removeStaleScratch(join(this.config.varDir, 'tmp'), before);
    const work = await removeAbandonedWorkDirs(join(this.config.varDir, 'work'), before);
    const local = [...scratch.map((e) => `tmp/${e}`), ...work.map((e) => `work/${e}`)];
    if (storage.length + local.length > 0) {
      this.logger.warn(
        `retention: removed what interrupted requests and runs left: ${[...storage, ...local].join(', ')}`,
      );
    }
    return { storage, local };
  }

  private async sweepStorage(before: number): Promise<string[]> {
    const keysByJob = new Map<string, string[]>();
    for (const key of await this.storage.list('jobs/')) {
      const id = JOB_PREFIX.exec(key)?.[1];
      if (id) {
        keysByJob.set(id, [...(keysByJob.get(id) ?? []), key]);
      }
    }
    const ids = [...keysByJob.keys()];
    const removed: string[] = [];
    for (let i = 0; i < ids.length; i += BATCH) {
      const batch = ids.slice(i, i + BATCH);
      const rows = await this.em.fork().find(Job, { id: { $in: batch } }, { fields: ['id'] });
      const known = new Set(rows.map((j) => j.id));
      for (const id of batch.filter((id) => !known.has(id))) {
        if (await this.untouchedSince(keysByJob.get(id)!, before)) {
          await this.storage.delete(`jobs/${id}/`);
          removed.push(`jobs/${id}/`);
        }
      }
    }
    return removed;
  }

  private async untouchedSince(keys: string[], before: number): Promise<boolean> {
    for (const key of keys) {
      const stat = await this.storage.stat(key);
      if (stat && stat.modifiedAt.getTime() >= before) {
        return false;
      }
    }
    return true;
  }
}
