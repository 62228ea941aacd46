import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import Bull, { type Job as BullJob, type Queue } from 'bull';
import Redis from 'ioredis';
import { AppConfig } from '../../config';
import { EPHEMERAL_JOB, JobName, type JobOf } from '../../queue/queue.constants';
import { startedOrGone, startProcessing } from '../../queue/start-processing';

export type Run = JobOf<JobName.RunJob>;
export type ClusterCancel = JobOf<JobName.CancelOnCluster>;

/**
 * One Bull queue per device (`device.<id>`): a worker processes each with the device's slots
 * as concurrency. Queues share one command and one subscriber connection; Bull opens a
 * blocking connection per processed queue only.
 *
 * The queues close in `beforeApplicationShutdown`, after every `onModuleDestroy`: Nest runs a
 * module's destroy hooks all at once, and closing there would race the scheduler, whose pass
 * (awaited by its own destroy hook) may still be handing a placement to a queue; cut short, that
 * placement would wait for a worker's reconciler. The ORM and Bull's shared queues close later
 * still (`onApplicationShutdown`), so the runs under way finish with both at hand. (Pausing the
 * queues earlier is no option: Bull's local pause, under way twice at once, crashes the process
 * with an unhandled rejection of its blocking connection's reconnect.)
 */
@Injectable()
export class DeviceQueues implements BeforeApplicationShutdown {
  private readonly logger = new Logger(DeviceQueues.name);
  private readonly producers = new Map<string, Queue>();
  private readonly served = new Map<
    string,
    { queue: Queue; slots: number; started: Promise<void> }
  >();
  private readonly blocking = new Map<Queue, Redis[]>();
  private shared?: { client: Redis; subscriber: Redis };
  private closing = false;

  constructor(private readonly config: AppConfig) {}

  static queueName(deviceId: string): string {
    return `device.${deviceId}`;
  }

  /** Bull job id: a placement that was taken back (device DOWN) never collides with the next. */
  static bullJobId(run: Run): string {
    return `${run.jobId}:${run.assignment}`;
  }

  private connection(type: 'client' | 'subscriber' | 'bclient', own: Redis[]): Redis {
    const url = this.config.redis.url!;
    const options = { maxRetriesPerRequest: null, enableReadyCheck: false };
    if (type === 'bclient') {
      const blocking = new Redis(url, options);
      blocking.on('error', () => {});
      own.push(blocking);
      return blocking;
    }
    if (!this.shared) {
      this.shared = { client: new Redis(url, options), subscriber: new Redis(url, options) };
      for (const c of Object.values(this.shared)) {
        c.on('error', (err: Error) => this.logger.warn(`redis: ${err.message}`));
      }
    }
    return this.shared[type];
  }

  /** A new Queue object for a device (workers make their own to process it). */
  open(deviceId: string): Queue {
    const stalled = this.config.stalledJobCheckMs;
    const own: Redis[] = [];
    const queue = new Bull(DeviceQueues.queueName(deviceId), {
      prefix: this.config.redis.prefix,
      createClient: (type) => this.connection(type, own),
      // Same as the shared queues (QueueModule): a dead worker's job runs again after 1-2
      // periods; the job's own retry policy (in PostgreSQL) decides beyond that.
      settings: {
        lockDuration: stalled,
        lockRenewTime: stalled / 2,
        stalledInterval: stalled,
        maxStalledCount: 1,
      },
    });
    this.blocking.set(queue, own);
    return queue;
  }

  /** Closes a queue from `open()`: waits for its running jobs unless told not to. */
  async close(queue: Queue, doNotWaitJobs = false): Promise<void> {
    await queue.close(doNotWaitJobs).catch(() => {});
    for (const c of this.blocking.get(queue) ?? []) {
      c.disconnect();
    }
    this.blocking.delete(queue);
  }

  private producer(deviceId: string): Queue {
    if (this.closing) {
      throw new Error('shutting down');
    }
    let queue = this.producers.get(deviceId);
    if (!queue) {
      queue = this.open(deviceId);
      this.producers.set(deviceId, queue);
    }
    return queue;
  }

  async enqueue(run: Run): Promise<void> {
    await this.producer(run.deviceId).add(JobName.RunJob, run, {
      ...EPHEMERAL_JOB,
      jobId: DeviceQueues.bullJobId(run),
      attempts: 1,
    });
  }

  /** Asks the worker serving the device to end a cluster job (deduplicated per job). */
  async cancelOnCluster(cancel: ClusterCancel): Promise<void> {
    await this.producer(cancel.deviceId).add(JobName.CancelOnCluster, cancel, {
      ...EPHEMERAL_JOB,
      jobId: `cancel:${cancel.jobId}`,
      attempts: 3,
      backoff: { type: 'exponential', delay: 5_000 },
    });
  }

  /** Jobs waiting in and taken from a device's queue (for monitoring). */
  async depth(deviceId: string): Promise<{ waiting: number; active: number; delayed: number }> {
    const counts = await this.producer(deviceId).getJobCounts();
    return { waiting: counts.waiting, active: counts.active, delayed: counts.delayed };
  }

  async holds(run: Run): Promise<boolean> {
    return (await this.producer(run.deviceId).getJob(DeviceQueues.bullJobId(run))) !== null;
  }

  async remove(run: Run): Promise<void> {
    const job: BullJob | null = await this.producer(run.deviceId).getJob(
      DeviceQueues.bullJobId(run),
    );
    await job?.remove().catch(() => {}); // one a worker holds cannot be removed; it sees the state
  }

  /**
   * Processes a device's queue here with `slots` jobs at once (workers only). A change of
   * slots reopens the queue; jobs under way on the old one finish there.
   */
  serve(
    deviceId: string,
    slots: number,
    handler: (job: BullJob<Run>) => Promise<void>,
    onFailed: (job: BullJob<Run>, err: Error) => void,
    cancelHandler?: (job: BullJob<ClusterCancel>) => Promise<void>,
  ): void {
    const current = this.served.get(deviceId);
    if (this.closing || current?.slots === slots) {
      return;
    }
    if (current) {
      void current.started.then(() => this.close(current.queue));
    }
    const queue = this.open(deviceId);
    queue.on('failed', (job: BullJob, err: Error) => {
      if (job.name === (JobName.RunJob as string)) {
        onFailed(job as BullJob<Run>, err);
      }
    });
    queue.on('error', (err: Error) => this.logger.warn(`device queue: ${err.message}`));
    const started = startProcessing(queue, JobName.RunJob, slots, handler)
      .then(() =>
        cancelHandler
          ? startProcessing(queue, JobName.CancelOnCluster, 1, cancelHandler)
          : undefined,
      )
      .catch((err?: Error) => {
        if (!this.closing) {
          this.logger.warn(`device ${deviceId}: queue not started: ${err?.message ?? 'closed'}`);
        }
      });
    this.served.set(deviceId, { queue, slots, started });
  }

  /** Stops taking jobs of a device that is gone; jobs under way finish. */
  unserve(deviceId: string): void {
    const current = this.served.get(deviceId);
    if (current) {
      this.served.delete(deviceId);
      void current.started.then(() => this.close(current.queue));
    }
  }

  servedDevices(): string[] {
    return [...this.served.keys()];
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.closing = true;
    await Promise.all(
      [...this.served.values()].map(async ({ queue, started }) => {
        await startedOrGone(started);
        await this.close(queue);
      }),
    );
    this.served.clear();
    await Promise.all([...this.producers.values()].map((q) => this.close(q)));
    this.producers.clear();
    for (const c of Object.values(this.shared ?? {})) {
      c.disconnect();
    }
  }
}
