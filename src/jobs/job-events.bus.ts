import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { AppConfig } from '../config';
import { JobState } from './job-state';
import { jobsChanged } from './job-view-cache';

export type JobUpdate =
  | { type: 'state'; jobId: string; state: JobState; reason?: string; at: string }
  | { type: 'progress'; jobId: string; progress: number; message?: string; at: string }
  /** Stop running the job; with `assignment`, only the run of that placement. */
  | { type: 'cancel'; jobId: string; assignment?: number }
  /** Work was placed on a device (`jobId` is `device-<id>`): its waiting claims look again. */
  | { type: 'work'; jobId: string }
  /** A piece of the job log; `offset` is its first byte's position in the log. */
  | { type: 'log'; jobId: string; offset: number; chunk: string };

/**
 * Live job updates between processes over Redis pub/sub: workers publish state and progress,
 * API processes forward them to event streams, and cancel requests reach whichever worker
 * runs the job. PostgreSQL stays the truth; a missed message is recovered from it.
 */
@Injectable()
export class JobEventsBus implements OnApplicationShutdown {
  private readonly logger = new Logger(JobEventsBus.name);
  private publisher?: Redis;
  private subscriber?: Redis;
  private readonly listeners = new Map<string, Set<(update: JobUpdate) => void>>();
  private readonly reconnectListeners = new Set<() => void>();

  constructor(private readonly config: AppConfig) {}

  private channel(jobId: string): string {
    return `${this.config.redis.prefix}:job-updates:${jobId}`;
  }

  private connect(): { publisher: Redis; subscriber: Redis } {
    if (!this.publisher || !this.subscriber) {
      const url = this.config.redis.url!;
      this.publisher = new Redis(url, { maxRetriesPerRequest: 2 });
      // No ready check on the subscriber: its INFO can race a SUBSCRIBE queued while
      // connecting ("Connection in subscriber mode…"), leaving the subscription hanging.
      this.subscriber = new Redis(url, { enableReadyCheck: false });
      for (const client of [this.publisher, this.subscriber]) {
        client.on('error', (err: Error) => this.logger.warn(`redis: ${err.message}`));
      }
      // Messages published while the subscriber was away are lost (Redis restarted, say):
      // once it is back (ioredis subscribes again by itself), listeners re-read PostgreSQL.
      let connected = false;
      this.subscriber.on('ready', () => {
        if (connected) {
          setImmediate(() => this.reconnectListeners.forEach((listener) => listener()));
        }
        connected = true;
      });
      this.subscriber.on('message', (channel: string, message: string) => {
        const jobId = channel.slice(channel.lastIndexOf(':') + 1);
        let update: JobUpdate;
        try {
          update = JSON.parse(message) as JobUpdate;
        } catch {
          return;
        }
        if (update.type === 'state' || update.type === 'progress') {
          // Before the event streams hear of it: a client told "succeeded" that asks for the
          // job next must not get a view kept from before (PostgreSQL's notification drops it
          // too, but may arrive later).
          jobsChanged(jobId);
        }
        for (const listener of this.listeners.get(jobId) ?? []) {
          listener(update);
        }
      });
    }
    return { publisher: this.publisher, subscriber: this.subscriber };
  }

  /** Best effort: subscribers re-read PostgreSQL, so a lost message costs freshness only. */
  async publish(update: JobUpdate): Promise<void> {
    try {
      await this.connect().publisher.publish(this.channel(update.jobId), JSON.stringify(update));
    } catch (err) {
      this.logger.warn(`could not publish a job update: ${(err as Error).message}`);
    }
  }

  /** Calls `listener` with every update of the job until the returned function is called. */
  async subscribe(jobId: string, listener: (update: JobUpdate) => void): Promise<() => void> {
    const { subscriber } = this.connect();
    let set = this.listeners.get(jobId);
    if (!set) {
      set = new Set();
      this.listeners.set(jobId, set);
      try {
        await subscriber.subscribe(this.channel(jobId));
      } catch (err) {
        // Not subscribed (Redis away too long): the next subscriber of the job tries again.
        if (this.listeners.get(jobId) === set && set.size === 0) {
          this.listeners.delete(jobId);
        }
        throw err;
      }
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(jobId) === set) {
        this.listeners.delete(jobId);
        subscriber.unsubscribe(this.channel(jobId)).catch(() => {});
      }
    };
  }

  /** Calls `listener` each time the subscriber is back after losing Redis, until unsubscribed. */
  onReconnect(listener: () => void): () => void {
    this.connect();
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  async wakeDevice(deviceId: string): Promise<void> {
    await this.publish({ type: 'work', jobId: `device-${deviceId}` });
  }

  /** Calls `listener` whenever work is placed on the device, until unsubscribed. */
  async onDeviceWork(deviceId: string, listener: () => void): Promise<() => void> {
    return this.subscribe(`device-${deviceId}`, listener);
  }

  /**
   * Last, after the device queues: the scheduler's last pass publishes its placements, and the
   * jobs a stopping worker lets finish still hear cancels and announce their ends.
   */
  onApplicationShutdown(): void {
    this.publisher?.disconnect();
    this.subscriber?.disconnect();
  }
}
