import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config';
import { ChangeChannel, ChangeFeed, NotifiedCache } from '../database/change-feed';

/** A view older than this is read again even if no change was notified (a safety net). */
export const JOB_VIEW_MAX_AGE_MS = 30_000;

const caches = new Set<JobViewCache>();

/**
 * This process has just committed a change to these jobs: their views go from every cache of
 * the process at once, so that the caller's next read sees its own change without waiting for
 * PostgreSQL's notification (which drops them in every other process).
 */
export function jobsChanged(...ids: string[]): void {
  for (const cache of caches) {
    for (const id of ids) {
      cache.invalidate(id);
    }
  }
}

/**
 * Job views kept in memory for `GET /jobs/:id`, the call ticket holders poll (often every
 * second, for minutes), and for the start of an event stream. A view is served from memory
 * only while the ChangeFeed listens: the `job` table's trigger notifies every update and
 * delete (ChangeChannel.Job), which drops that job's view. The API process connects on its
 * first read; workers never do. Off with the embedded database or JOB_VIEW_CACHE_SIZE=0.
 */
@Injectable()
export class JobViewCache<V extends object = object> implements OnApplicationShutdown {
  private readonly views: NotifiedCache<V>;

  constructor(config: AppConfig, feed: ChangeFeed) {
    this.views = new NotifiedCache<V>(feed, config.jobViewCacheSize, JOB_VIEW_MAX_AGE_MS);
    feed.on(ChangeChannel.Job, (id) => this.invalidate(id));
    caches.add(this);
  }

  /** Whether views are served from memory now (the LISTEN connection is up). */
  get active(): boolean {
    return this.views.active;
  }

  /** The job's view from memory, else from `load` (kept when nothing changed meanwhile). */
  read(id: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    return this.views.read(id, load);
  }

  invalidate(id: string): void {
    this.views.invalidate(id);
  }

  onApplicationShutdown(): void {
    caches.delete(this);
    this.views.clear();
  }
}
