import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import type { Job as BullJob } from 'bull';
import { DeviceTokens } from '../devices/device-tokens.service';
import { Device } from '../devices/device.entity';
import { ALL_SERVICES } from '../devices/device-state';
import { AppConfig } from '../config';
import { EPHEMERAL_JOB, JobName } from '../queue/queue.constants';
import { startedOrGone, startProcessing } from '../queue/start-processing';
import { JobExecutionService } from './job-execution.service';
import { JobQueue } from './job-queue';
import { JobState } from './job-state';
import { Job } from './job.entity';
import { RetentionService } from './retention.service';
import { DeviceQueues, Run } from './scheduling/device-queues';
import { JobScheduler } from './scheduling/job-scheduler';
import { killOrphans } from './work-dir';

const RECONCILE_EVERY_MS = 30_000;
const RETENTION_EVERY_MS = 3600_000;
/** Younger placements may still be on their way into Redis from the scheduler. */
const RECONCILE_GRACE_MS = 5_000;
export const LOCAL_DEVICE_NAME = 'local';

/**
 * The worker side. It runs the devices whose runner lives here (local and SSH): it processes
 * each one's Bull queue with the device's slots as concurrency and answers for their
 * liveness (a heartbeat while a worker is up). The reconciler hands over again every
 * placement Redis does not hold: after a flush or a restart of Redis nothing is lost.
 */
@Injectable()
export class JobsWorker implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(JobsWorker.name);
  private timers: NodeJS.Timeout[] = [];
  private syncing = false;
  private started?: Promise<void>;

  constructor(
    private readonly config: AppConfig,
    private readonly queue: JobQueue,
    private readonly queues: DeviceQueues,
    private readonly execution: JobExecutionService,
    private readonly scheduler: JobScheduler,
    private readonly em: EntityManager,
    private readonly retention: RetentionService,
    private readonly tokens: DeviceTokens,
  ) {}

  onApplicationBootstrap(): void {
    this.started = startProcessing(this.queue.queue, JobName.Retention, 1, async () => ({
      expired: await this.retention.run(),
    })).catch(() => {}); // the queue closed while starting: nothing to process
    void killOrphans(join(this.config.varDir, 'work')).then((n) => {
      if (n > 0) {
        this.logger.warn(`ended ${n} program(s) left running by a worker that died`);
      }
    });
    // None of these waits for Redis: a worker must boot (and keep trying) while Redis is away.
    // (reconcile also schedules retention.)
    void this.ensureLocalDevice().then(() => this.sync());
    void this.reconcile();
    const beat = Math.min(5_000, Math.floor(this.config.deviceDownAfterMs / 4));
    // Work Redis lost is handed over as fast as work a dead worker held
    // (STALLED_JOB_CHECK_SECONDS), within 5-30 s: younger placements are left alone anyway.
    const reconcileEvery = Math.min(
      RECONCILE_EVERY_MS,
      Math.max(RECONCILE_GRACE_MS, this.config.stalledJobCheckMs),
    );
    this.timers = [
      setInterval(() => void this.sync(), beat),
      setInterval(() => void this.reconcile(), reconcileEvery),
    ];
    this.timers.forEach((t) => t.unref());
  }

  async onModuleDestroy(): Promise<void> {
    this.timers.forEach((t) => clearInterval(t));
    await startedOrGone(this.started);
  }

  /** Repeatable jobs are keyed by their schedule: adding it again and again keeps exactly one. */
  private async scheduleRetention(): Promise<void> {
    try {
      await this.queue.queue.add(
        JobName.Retention,
        {},
        { ...EPHEMERAL_JOB, repeat: { every: RETENTION_EVERY_MS } },
      );
    } catch (err) {
      this.logger.warn(`retention not scheduled: ${(err as Error).message}`);
    }
  }

  /** A fresh installation runs jobs with no setup: the workers are its first device. */
  private async ensureLocalDevice(): Promise<void> {
    if (!this.config.localDevice) {
      return;
    }
    try {
      const em = this.em.fork();
      if ((await em.count(Device, { runner: 'local' })) > 0) {
        return;
      }
      const { tokenHash, tokenHint } = this.tokens.issue(); // never shown: no agent uses it
      await em.insert(Device, {
        id: randomUUID(),
        name: LOCAL_DEVICE_NAME,
        kind: 'workstation',
        runner: 'local',
        services: [ALL_SERVICES],
        slots: this.config.workerConcurrency,
        labels: {},
        adminState: 'enabled',
        tokenHash,
        tokenHint,
        activeJobs: 0,
        lastHeartbeatAt: new Date(),
        createdAt: new Date(),
        updatedAt: new Date(),
      });
      this.logger.log(`created device "${LOCAL_DEVICE_NAME}" for the workers (LOCAL_DEVICE)`);
    } catch (err) {
      // Another worker created it first, or a device already has the name: either is fine.
      this.logger.warn(`local device not created: ${(err as Error).message}`);
    }
  }

  /** Serves the queues of the local and SSH devices and keeps them alive (heartbeat). */
  async sync(): Promise<void> {
    if (this.syncing) {
      return;
    }
    this.syncing = true;
    try {
      const em = this.em.fork();
      // A device back from DOWN is news for operators: its outbox row commits with the beat.
      const beats = await em.getConnection().execute<Array<{ id: string; was_down: boolean }>>(
        `with prev as (
           select id, name, down_since,
                  (down_since is not null or last_heartbeat_at is null) as was_down
             from device where runner in ('local', 'ssh') for update),
         beat as (
           update device d set last_heartbeat_at = now(), down_since = null
             from prev where d.id = prev.id
           returning d.id),
         news as (
           insert into outbox_event (at, type, subject_type, subject_id, data)
           select now(), 'device.up', 'device', id::text,
                  jsonb_build_object('deviceName', name, 'downSince', down_since)
             from prev where down_since is not null)
         select id, was_down from prev`,
      );
      const revived = beats.filter((b) => b.was_down);
      const devices = await em.find(Device, { runner: { $in: ['local', 'ssh'] } });
      for (const device of devices) {
        this.queues.serve(
          device.id,
          device.slots,
          (job: BullJob<Run>) => this.execution.handle(job, device.runner),
          (job: BullJob<Run>, err: Error) => void this.execution.giveUp(job.data, err.message),
          device.runner === 'ssh' ? (job) => this.execution.cancelOnCluster(job.data) : undefined,
        );
      }
      const ids = new Set(devices.map((d) => d.id));
      for (const id of this.queues.servedDevices()) {
        if (!ids.has(id)) {
          this.queues.unserve(id);
        }
      }
      if (revived.length > 0) {
        this.scheduler.kick();
      }
    } catch (err) {
      this.logger.warn(`device sync failed: ${(err as Error).message}`);
    } finally {
      this.syncing = false;
    }
  }

  /** Hands over again every placement on a local or SSH device that Redis does not hold. */
  async reconcile(): Promise<number> {
    let restored = 0;
    // The retention schedule lives in Redis too: after a flush or a restart of Redis it would
    // be gone until the next worker boot. Adding it again is a no-op while it is there.
    await this.scheduleRetention();
    try {
      const placed = await this.em.fork().find(
        Job,
        {
          state: JobState.Assigned,
          device: { runner: { $in: ['local', 'ssh'] } },
          updatedAt: { $lt: new Date(Date.now() - RECONCILE_GRACE_MS) },
        },
        { fields: ['id', 'device', 'assignment'], orderBy: { createdAt: 'asc' }, limit: 10_000 },
      );
      for (const job of placed) {
        const run = { jobId: job.id, deviceId: job.device!.id, assignment: job.assignment };
        if (!(await this.queues.holds(run))) {
          await this.queues.enqueue(run);
          restored++;
        }
      }
      if (restored > 0) {
        this.logger.warn(`handed over ${restored} placed job(s) that Redis did not hold`);
      }
    } catch (err) {
      this.logger.warn(`reconcile failed: ${(err as Error).message}`);
    }
    return restored;
  }
}
