import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Client } from 'pg';
import { AppConfig } from '../config';

/**
 * The channel the `job` table's trigger notifies on every update and delete, with the job's
 * id as payload (Migration20261202090000). PostgreSQL sends it when the change commits,
 * whichever process or tool made it.
 */
export const JOB_CHANGED_CHANNEL = 'labgate_job_changed';

/** A view older than this is read again even if no change was notified (a safety net). */
export const JOB_VIEW_MAX_AGE_MS = 30_000;

const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 30_000;

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
 * second, for minutes). A view is served from memory only while this process LISTENs to
 * JOB_CHANGED_CHANNEL: a notification drops the job's view, losing the connection drops them
 * all (and the cache stays off until it is back), and a read that a change overtook is not
 * kept. The API process connects on its first read; workers never do. Off with the embedded
 * database (its one connection is the ORM's) or JOB_VIEW_CACHE_SIZE=0.
 */
@Injectable()
export class JobViewCache<V extends object = object> implements OnApplicationShutdown {
  private readonly logger = new Logger(JobViewCache.name);
  private readonly size: number;
  private readonly entries = new Map<string, { view: V; at: number }>();
  /** Reads in flight per job, and the jobs changed while one was: those reads keep nothing. */
  private readonly reading = new Map<string, number>();
  private readonly overtaken = new Set<string>();
  private listener?: Client;
  private state: 'off' | 'connecting' | 'listening' | 'waiting' | 'closed' = 'off';
  /** Bumped whenever notifications may have been missed: reads begun before keep nothing. */
  private epoch = 0;
  private retryMs = RETRY_FIRST_MS;
  private retry?: NodeJS.Timeout;

  constructor(private readonly config: AppConfig) {
    this.size = config.database.embedded ? 0 : config.jobViewCacheSize;
    caches.add(this);
  }

  /** Whether views are served from memory now (the LISTEN connection is up). */
  get active(): boolean {
    return this.state === 'listening';
  }

  /** The job's view from memory, else from `load` (kept when nothing changed meanwhile). */
  async read(id: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    if (this.size === 0) {
      return load();
    }
    if (this.state === 'off') {
      this.listen();
    }
    if (this.state !== 'listening') {
      return load();
    }
    const hit = this.entries.get(id);
    if (hit && Date.now() - hit.at < JOB_VIEW_MAX_AGE_MS) {
      return hit.view;
    }
    const epoch = this.epoch;
    this.reading.set(id, (this.reading.get(id) ?? 0) + 1);
    try {
      const view = await load();
      if (view && this.state === 'listening' && epoch === this.epoch && !this.overtaken.has(id)) {
        this.keep(id, view);
      }
      return view;
    } finally {
      const left = this.reading.get(id)! - 1;
      if (left === 0) {
        this.reading.delete(id);
        this.overtaken.delete(id);
      } else {
        this.reading.set(id, left);
      }
    }
  }

  invalidate(id: string): void {
    this.entries.delete(id);
    if (this.reading.has(id)) {
      this.overtaken.add(id);
    }
  }

  private keep(id: string, view: V): void {
    this.entries.delete(id);
    if (this.entries.size >= this.size) {
      // The oldest kept view goes (Map keeps insertion order).
      this.entries.delete(this.entries.keys().next().value!);
    }
    this.entries.set(id, { view, at: Date.now() });
  }

  private listen(): void {
    this.state = 'connecting';
    const client = new Client({
      connectionString: this.config.database.url,
      application_name: 'labgate job view cache',
      // A server that does not answer is given up on (and tried again later), and a silently
      // dropped connection is noticed by TCP keepalive; views older than JOB_VIEW_MAX_AGE_MS
      // are read again whatever happens.
      connectionTimeoutMillis: 5_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    this.listener = client;
    client.on('notification', (message) => {
      if (message.payload) {
        this.invalidate(message.payload);
      }
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    client
      .connect()
      .then(() => client.query(`listen ${JOB_CHANGED_CHANNEL}`))
      .then(
        () => {
          if (this.listener === client && this.state === 'connecting') {
            this.state = 'listening';
            this.retryMs = RETRY_FIRST_MS;
          }
        },
        (err: Error) => this.lost(client, err),
      );
  }

  /** The LISTEN connection is gone: nothing kept can be trusted; try again later. */
  private lost(client: Client, err?: Error): void {
    if (this.listener !== client || this.state === 'closed') {
      return;
    }
    this.listener = undefined;
    this.entries.clear();
    this.epoch++;
    client.end().catch(() => {});
    this.logger.warn(
      `job views are read from PostgreSQL until the LISTEN connection is back ` +
        `(in ${this.retryMs / 1000} s)${err ? `: ${err.message}` : ''}`,
    );
    this.state = 'waiting';
    this.retry = setTimeout(() => {
      this.state = 'off';
    }, this.retryMs);
    this.retry.unref();
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  async onApplicationShutdown(): Promise<void> {
    caches.delete(this);
    this.state = 'closed';
    clearTimeout(this.retry);
    this.entries.clear();
    await this.listener?.end().catch(() => {});
    this.listener = undefined;
  }
}
