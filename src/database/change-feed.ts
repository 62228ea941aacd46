import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Client } from 'pg';
import { AppConfig } from '../config';

/**
 * The channels PostgreSQL's triggers notify when a change commits, whichever process or tool
 * made it (Migration20261202090000, Migration20261202110000, Migration20261208020000).
 */
export enum ChangeChannel {
  /** A job was updated or deleted; payload: its id. */
  Job = 'labgate_job_changed',
  /** A user row was updated or deleted; payload: its id. */
  User = 'labgate_user_changed',
  /** The entitlement rules changed (any statement); no payload. */
  Rules = 'labgate_rules_changed',
  /** An admin's service settings changed (any statement on `service_state`); no payload. */
  ServiceState = 'labgate_service_state_changed',
}

const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 30_000;

const feeds = new Set<ChangeFeed>();

/**
 * This process has just committed these changes: every feed of the process hands them to its
 * handlers now, so that the caller's next request sees its own change without waiting for
 * PostgreSQL's notification (which brings it to every other process).
 */
export function changedHere(channel: ChangeChannel, ...payloads: string[]): void {
  for (const feed of feeds) {
    payloads.forEach((payload) => feed.deliver(channel, payload));
  }
}

/**
 * One LISTEN connection per process for every ChangeChannel, opened when a cache first asks
 * (`active`). What is kept in memory on its word is trusted only while it is up: losing it
 * tells every `onLost` listener (they drop what they keep) and bumps `epoch` (reads begun
 * before keep nothing); it is opened again after a backoff from 1 s to 30 s. Off with the
 * embedded database, whose one connection belongs to the ORM.
 */
@Injectable()
export class ChangeFeed implements OnApplicationShutdown {
  private readonly logger = new Logger(ChangeFeed.name);
  private readonly handlers = new Map<ChangeChannel, Array<(payload: string) => void>>();
  private readonly lostHandlers: Array<() => void> = [];
  private listener?: Client;
  private state: 'off' | 'connecting' | 'listening' | 'waiting' | 'closed' = 'off';
  private retryMs = RETRY_FIRST_MS;
  private retry?: NodeJS.Timeout;
  /** Bumped whenever notifications may have been missed. */
  epoch = 0;

  constructor(private readonly config: AppConfig) {
    feeds.add(this);
  }

  get enabled(): boolean {
    return !this.config.database.embedded;
  }

  /** Whether notifications arrive now; the first ask connects (when enabled). */
  get active(): boolean {
    if (this.state === 'off' && this.enabled) {
      this.connect();
    }
    return this.state === 'listening';
  }

  /** Calls `handle` with the payload of each notification on `channel`. */
  on(channel: ChangeChannel, handle: (payload: string) => void): void {
    this.handlers.set(channel, [...(this.handlers.get(channel) ?? []), handle]);
  }

  /** Hands a change to the handlers of its channel (a notification, or `changedHere`). */
  deliver(channel: ChangeChannel, payload: string): void {
    for (const handle of this.handlers.get(channel) ?? []) {
      handle(payload);
    }
  }

  /** Calls `handle` when notifications may have been missed (the connection was lost). */
  onLost(handle: () => void): void {
    this.lostHandlers.push(handle);
  }

  private connect(): void {
    this.state = 'connecting';
    const client = new Client({
      connectionString: this.config.database.url,
      application_name: 'labgate change feed',
      // A server that does not answer is given up on (and tried again later), and a silently
      // dropped connection is noticed by TCP keepalive; caches also re-read what they keep
      // after a maximum age whatever happens.
      connectionTimeoutMillis: 5_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    this.listener = client;
    client.on('notification', (message) =>
      this.deliver(message.channel as ChangeChannel, message.payload ?? ''),
    );
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    client
      .connect()
      .then(() =>
        client.query(
          Object.values(ChangeChannel)
            .map((channel) => `listen ${channel};`)
            .join(' '),
        ),
      )
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

  /** The LISTEN connection is gone: nothing kept on its word can be trusted; try again later. */
  private lost(client: Client, err?: Error): void {
    if (this.listener !== client || this.state === 'closed') {
      return;
    }
    this.listener = undefined;
    this.epoch++;
    this.lostHandlers.forEach((handle) => handle());
    client.end().catch(() => {});
    this.logger.warn(
      `cached views are read from PostgreSQL until the LISTEN connection is back ` +
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
    feeds.delete(this);
    this.state = 'closed';
    clearTimeout(this.retry);
    await this.listener?.end().catch(() => {});
    this.listener = undefined;
  }
}

/**
 * Values kept in memory on the ChangeFeed's word: served only while it listens, dropped by
 * key (`invalidate`) or all at once (`clear`, and when the feed is lost), never older than
 * `maxAgeMs`, and at most `size` of them (the oldest goes). A read that a change overtook
 * (an invalidation of its key, a clear, a lost feed) keeps nothing.
 */
export class NotifiedCache<V> {
  private readonly entries = new Map<string, { value: V; at: number }>();
  /** Reads in flight per key, and the keys changed while one was: those reads keep nothing. */
  private readonly reading = new Map<string, number>();
  private readonly overtaken = new Set<string>();
  private generation = 0;

  constructor(
    private readonly feed: ChangeFeed,
    private readonly size: number,
    private readonly maxAgeMs: number,
  ) {
    feed.onLost(() => this.clear());
  }

  /** Whether values are served from memory now. */
  get active(): boolean {
    return this.size > 0 && this.feed.active;
  }

  /**
   * The value from memory if it is there (and `fresh` says it still answers), else from
   * `load` (kept when nothing changed meanwhile).
   */
  async read(
    key: string,
    load: () => Promise<V | undefined>,
    fresh: (value: V) => boolean = () => true,
  ): Promise<V | undefined> {
    if (!this.active) {
      return load();
    }
    const hit = this.entries.get(key);
    if (hit && Date.now() - hit.at < this.maxAgeMs && fresh(hit.value)) {
      return hit.value;
    }
    const epoch = this.feed.epoch;
    const generation = this.generation;
    this.reading.set(key, (this.reading.get(key) ?? 0) + 1);
    try {
      const value = await load();
      if (
        value !== undefined &&
        this.feed.active &&
        epoch === this.feed.epoch &&
        generation === this.generation &&
        !this.overtaken.has(key)
      ) {
        this.keep(key, value);
      }
      return value;
    } finally {
      const left = this.reading.get(key)! - 1;
      if (left === 0) {
        this.reading.delete(key);
        this.overtaken.delete(key);
      } else {
        this.reading.set(key, left);
      }
    }
  }

  invalidate(key: string): void {
    this.entries.delete(key);
    if (this.reading.has(key)) {
      this.overtaken.add(key);
    }
  }

  /** Drops every value; reads in flight keep nothing. */
  clear(): void {
    this.entries.clear();
    this.generation++;
  }

  /** Reads in flight keep nothing (a change they may have missed, of a key not known yet). */
  overtakeReads(): void {
    this.generation++;
  }

  private keep(key: string, value: V): void {
    this.entries.delete(key);
    if (this.entries.size >= this.size) {
      // The oldest kept value goes (Map keeps insertion order).
      this.entries.delete(this.entries.keys().next().value!);
    }
    this.entries.set(key, { value, at: Date.now() });
  }
}
