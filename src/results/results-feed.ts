import { randomUUID } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { AuditService } from '../audit/audit.service';
import { User } from '../auth/user.entity';
import { assertBlobKey } from '../storage/blob-key';
import { BlobStorage } from '../storage/blob-storage';
import { listArtifacts } from './result-archive';
import { Result, type Artifact } from './result.entity';

/** This reader's row in `result_feed_cursor`. */
export const FEED_NAME = 'results';
const BATCH = 100;
/**
 * Event ids come from a sequence, so a transaction may commit an event with a lower id after
 * one with a higher id has been read. The cursor therefore only moves past events older than
 * this (a job transition's transaction lasts milliseconds); younger ones are read again, and
 * the per-job unique key makes that harmless.
 */
export const SETTLE_SECONDS = 60;

/** What the `succeeded` event of a job carries (the jobs module's JobEventData, as stored). */
interface SucceededData {
  ownerId?: unknown;
  service?: unknown;
  serviceVersion?: unknown;
  deviceId?: unknown;
  metrics?: unknown;
  resultKey?: unknown;
  finishedAt?: unknown;
}

interface EventRow {
  id: string;
  job_id: string;
  at: Date;
  data: SucceededData | null;
}

const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A malformed id in an event must not fail the pass (and stop the feed) on a cast. */
const uuid = (v: unknown) => (typeof v === 'string' && UUID.test(v) ? v : undefined);
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Turns every succeeded job into a Result by reading the job outbox (`job_event`, documented
 * as the jobs module's outbox) past a cursor of its own: one Result per job, created in the
 * transaction that moves the cursor. It never reads the `job` table: what a result needs is in
 * the event. The outputs archive is copied under `results/<id>/` (retention removes the job's
 * files; the result stays) and its files are listed.
 *
 * Any process may call `drain()`; workers also run it every second (ResultsFeedWorker). The
 * cursor row is locked for a pass, so two processes never handle the same event at once.
 */
@Injectable()
export class ResultsFeed {
  private readonly logger = new Logger(ResultsFeed.name);
  private chain: Promise<unknown> = Promise.resolve();
  private queued = 0;
  /** Events already warned about: a skipped event is read again until the cursor passes it. */
  private readonly warned = new Set<string>();

  constructor(
    private readonly em: EntityManager,
    private readonly storage: BlobStorage,
    private readonly audit: AuditService,
  ) {}

  /**
   * Creates the results of every succeeded job visible now, after any pass in progress in this
   * process (waiting for another process's pass too). Resolves with how many it created.
   */
  drain(): Promise<number> {
    return this.enqueue(() => this.untilEmpty(true));
  }

  /** The timer's pass: nothing if one is queued here already or another process holds it. */
  async tick(): Promise<void> {
    if (this.queued > 0) {
      return;
    }
    try {
      await this.enqueue(() => this.untilEmpty(false));
    } catch (err) {
      this.logger.warn(`results feed pass failed (retried in a second): ${(err as Error).message}`);
    }
  }

  /** Resolves once the pass in progress (if any) is over. */
  async idle(): Promise<void> {
    await this.chain;
  }

  private enqueue(work: () => Promise<number>): Promise<number> {
    this.queued++;
    const run = this.chain.then(work).finally(() => this.queued--);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async untilEmpty(wait: boolean): Promise<number> {
    let created = 0;
    for (;;) {
      const pass = await this.pass(wait);
      created += pass.created;
      if (!pass.more) {
        return created;
      }
    }
  }

  /** One batch in one transaction: lock the cursor, create results, move the cursor. */
  private async pass(wait: boolean): Promise<{ created: number; more: boolean }> {
    const copied: string[] = [];
    try {
      return await this.em.fork().transactional(async (em) => {
        const sql = <T extends object[]>(text: string, params: unknown[] = []) =>
          em.getConnection().execute<T>(text, params, 'all', em.getTransactionContext());
        await sql(
          `insert into result_feed_cursor (name, position, updated_at) values (?, 0, now())
           on conflict (name) do nothing`,
          [FEED_NAME],
        );
        const cursor = await sql<Array<{ position: string }>>(
          `select position from result_feed_cursor where name = ? for update${wait ? '' : ' skip locked'}`,
          [FEED_NAME],
        );
        if (cursor.length === 0) {
          return { created: 0, more: false };
        }
        const position = cursor[0].position;
        const events = await sql<EventRow[]>(
          `select e.id, e.job_id, e.at, e.data from job_event e
            where e.id > ? and e.state = 'succeeded'
              and not exists (select 1 from result r where r.job_id = e.job_id)
            order by e.id limit ?`,
          [position, BATCH],
        );
        const created = await this.createResults(em, events, copied);
        const more = events.length === BATCH;
        const [settled] = await sql<Array<{ id: string | null }>>(
          `select max(id)::text as id from job_event
            where id > ? and at < now() - make_interval(secs => ?)${more ? ' and id <= ?' : ''}`,
          more
            ? [position, SETTLE_SECONDS, events[events.length - 1].id]
            : [position, SETTLE_SECONDS],
        );
        if (settled?.id) {
          await sql(
            'update result_feed_cursor set position = ?, updated_at = now() where name = ?',
            [settled.id, FEED_NAME],
          );
        }
        return { created, more };
      });
    } catch (err) {
      // Nothing was committed: the copies made for it are orphans.
      for (const key of copied) {
        await this.storage.delete(key).catch(() => undefined);
      }
      throw err;
    }
  }

  private async createResults(em: EntityManager, events: EventRow[], copied: string[]) {
    const owners = new Set(
      (
        await em.find(
          User,
          {
            id: { $in: events.map((e) => uuid(e.data?.ownerId)).filter((id) => id !== undefined) },
          },
          { fields: ['id'] },
        )
      ).map((u) => u.id),
    );
    const seen = new Set<string>();
    let created = 0;
    for (const event of events) {
      const data = event.data ?? {};
      const ownerId = uuid(data.ownerId);
      const service = str(data.service);
      if (seen.has(event.job_id)) {
        continue;
      }
      seen.add(event.job_id);
      if (!ownerId || !service || !owners.has(ownerId)) {
        this.warnOnce(
          event.id,
          `job ${event.job_id} succeeded (event ${event.id}) without a known owner and service; no result`,
        );
        continue;
      }
      const id = randomUUID();
      const archive = await this.copyArchive(id, str(data.resultKey), copied);
      const now = new Date();
      const finishedAt = str(data.finishedAt);
      em.create(Result, {
        id,
        jobId: event.job_id,
        service,
        serviceVersion: str(data.serviceVersion),
        owner: em.getReference(User, ownerId),
        deviceId: uuid(data.deviceId),
        metrics: isObject(data.metrics) ? data.metrics : {},
        artifacts: archive?.artifacts ?? [],
        archiveKey: archive?.key,
        archiveSize: archive?.size,
        archiveSha256: archive?.sha256,
        tags: [],
        visibility: 'private',
        status: 'published',
        createdAt: now,
        executedAt:
          finishedAt && !Number.isNaN(Date.parse(finishedAt)) ? new Date(finishedAt) : event.at,
        updatedAt: now,
      });
      this.audit.record(
        {
          action: 'result.create',
          targetType: 'result',
          targetId: id,
          details: { jobId: event.job_id, service, ownerId, event: event.id },
        },
        em,
      );
      created++;
    }
    await em.flush();
    return created;
  }

  private warnOnce(eventId: string, message: string): void {
    if (this.warned.size > 10_000) {
      this.warned.clear();
    }
    if (!this.warned.has(eventId)) {
      this.warned.add(eventId);
      this.logger.warn(message);
    }
  }

  /** The job's outputs archive copied to `results/<id>/outputs.tar.gz`, with its file list. */
  private async copyArchive(
    id: string,
    source: string | undefined,
    copied: string[],
  ): Promise<{ key: string; size: number; sha256: string; artifacts: Artifact[] } | undefined> {
    if (!source) {
      return undefined;
    }
    try {
      assertBlobKey(source);
    } catch (err) {
      this.logger.warn(`result ${id}: ${(err as Error).message}; no artifacts`);
      return undefined;
    }
    if (!(await this.storage.stat(source))) {
      this.logger.warn(`result ${id}: the job's outputs ${source} are gone; no artifacts`);
      return undefined;
    }
    const key = `results/${id}/outputs.tar.gz`;
    copied.push(key);
    const stored = await this.storage.write(key, this.storage.read(source));
    let artifacts: Artifact[] = [];
    try {
      artifacts = await listArtifacts(this.storage.read(key));
    } catch (err) {
      // Kept as it is (downloadable whole by admins later), but nothing in it can be listed.
      this.logger.warn(
        `result ${id}: outputs are not a readable tar.gz (${(err as Error).message})`,
      );
    }
    return { key, size: stored.size, sha256: stored.sha256, artifacts };
  }
}
