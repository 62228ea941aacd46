import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config';
import { ChangeChannel, ChangeFeed, changedHere, NotifiedCache } from '../database/change-feed';

/** A view older than this is read again even if no change was notified (a safety net). */
export const JOB_VIEW_MAX_AGE_MS = 30_000;

/** This process has just committed a change to these jobs: their views go at once. */
export function jobsChanged(...ids: string[]): void {
  changedHere(ChangeChannel.Job, ...ids);
}

/**
 * Job views kept in memory for `GET /jobs/:id`, the call ticket holders poll (often every
 * second, for minutes), and for the start of an event stream. A view is served from memory
 * only while the ChangeFeed listens: the `job` table's trigger notifies every update and
 * delete (ChangeChannel.Job), which drops that job's view. The API process connects on its
 * first read; workers never do. Off with the embedded database or JOB_VIEW_CACHE_SIZE=0.
 */
@Injectable()
export class JobViewCache<V extends object = object> {
  private readonly views: NotifiedCache<V>;

  constructor(config: AppConfig, feed: ChangeFeed) {
    this.views = new NotifiedCache<V>(feed, config.jobViewCacheSize, JOB_VIEW_MAX_AGE_MS);
    feed.on(ChangeChannel.Job, (id) => this.invalidate(id));
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
}
