import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { Subscription } from 'rxjs';
import { AuditEvent } from '../../audit/audit-event.entity';
import { CatalogService } from '../../catalog/catalog.service';
import { AppConfig } from '../../config';
import { DeviceEvents } from '../../devices/device-events';
import type { DeviceRunner } from '../../devices/device-state';
import { JobEvent } from '../job-event.entity';
import { JobEventsBus } from '../job-events.bus';
import { JobState } from '../job-state';
import type { JobView } from '../job.mapper';
import { DeviceQueues } from './device-queues';
import { FreeDevice, place, PlacementInput, WaitingJob, waitingReason } from './placement';

/** A periodic pass catches what no event announced (another process's finished job, say). */
const PASS_EVERY_MS = 5_000;
/** Waiting jobs considered per (owner, service, target) queue in one pass. */
const HEADS_PER_QUEUE = 64;
const ACTIVE = `('${JobState.Assigned}', '${JobState.Running}')`;

interface DeviceRow {
  id: string;
  name: string;
  runner: DeviceRunner;
  services: string[];
  slots: number;
  active: string | number;
  last_assigned_at: Date | null;
}

interface Assigned {
  jobId: string;
  deviceId: string;
  runner: DeviceRunner;
  assignment: number;
}

/**
 * Places queued jobs on devices. One pass at a time over all processes (a PostgreSQL
 * advisory lock), so that two passes never fill one slot twice; passes are triggered by
 * whatever frees or adds capacity or work, and every few seconds. Placing a job commits its
 * `assigned` state (with event and audit rows); then it is handed to the device's Bull queue
 * (local and SSH runners) or its agent is woken (agent runner).
 */
@Injectable()
export class JobScheduler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(JobScheduler.name);
  private running?: Promise<void>;
  private again = false;
  private timer?: NodeJS.Timeout;
  private wakeAt?: NodeJS.Timeout;
  private subscription?: Subscription;
  private stopped = false;

  constructor(
    private readonly em: EntityManager,
    private readonly config: AppConfig,
    private readonly catalog: CatalogService,
    private readonly queues: DeviceQueues,
    private readonly bus: JobEventsBus,
    private readonly deviceEvents: DeviceEvents,
  ) {}

  onApplicationBootstrap(): void {
    this.subscription = this.deviceEvents.changes$.subscribe(() => this.kick());
    this.timer = setInterval(() => this.kick(), PASS_EVERY_MS);
    this.timer.unref();
    this.kick();
  }

  onModuleDestroy(): Promise<void> | undefined {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.wakeAt);
    this.subscription?.unsubscribe();
    return this.running;
  }

  /** Asks for a pass soon; passes asked for while one runs collapse into one more. */
  kick(): void {
    if (this.stopped) {
      return;
    }
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => (this.running = undefined));
  }

  /** A pass now, for callers that need its outcome (tests, the CLI). */
  async settle(): Promise<void> {
    while (this.running) {
      await this.running;
    }
    await this.pass();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.pass();
      } catch (err) {
        this.logger.warn(`scheduling pass failed: ${(err as Error).message}`);
      }
    } while (this.again && !this.stopped);
  }

  private async pass(): Promise<void> {
    const assigned = await this.em.fork().transactional(async (em) => {
      const sql = <T extends object>(query: string, params: unknown[] = []) =>
        em.getConnection().execute<T[]>(query, params, 'all', em.getTransactionContext());
      await sql(`select pg_advisory_xact_lock(hashtext('labgate.scheduler'))`);
      await this.countActive(sql);
      const downAfter = `${Math.ceil(this.config.deviceDownAfterMs / 1000)} seconds`;
      const devices = await sql<DeviceRow>(
        `select d.id, d.name, d.runner, d.services, d.slots, d.active_jobs as active,
                d.last_assigned_at
           from device d
          where d.admin_state = 'enabled'
            and d.last_heartbeat_at > now() - ?::interval
            and d.active_jobs < d.slots`,
        [downAfter],
      );
      if (devices.length === 0) {
        return [];
      }
      const waiting = await this.waiting(sql);
      if (waiting.length === 0) {
        return [];
      }
      const input = await this.inputFor(sql, devices, waiting);
      const placements = place(input);
      const byId = new Map(devices.map((d) => [d.id, d]));
      const jobsById = new Map(waiting.map((w) => [w.id, w]));
      const now = new Date();
      const done: Assigned[] = [];
      for (const { jobId, deviceId } of placements) {
        const device = byId.get(deviceId)!;
        const rows = await sql<{ assignment: number }>(
          `update job set state = ?, device_id = ?, assignment = assignment + 1, reason = null,
                  worker = null, updated_at = ?, assigned_at = ?
            where id = ? and state = ? and device_id is null
           returning assignment`,
          [JobState.Assigned, deviceId, now, now, jobId, JobState.Queued],
        );
        if (rows.length === 0) {
          continue; // cancelled meanwhile
        }
        em.create(JobEvent, {
          jobId,
          at: now,
          state: JobState.Assigned,
          previousState: JobState.Queued,
          reason: `placed on ${device.name}`,
          actor: 'scheduler',
          data: {
            ownerId: jobsById.get(jobId)!.ownerId,
            service: jobsById.get(jobId)!.service,
            deviceId,
          },
        });
        em.create(AuditEvent, {
          at: now,
          actorKind: 'system',
          action: `job.${JobState.Assigned}`,
          targetType: 'job',
          targetId: jobId,
          details: { from: JobState.Queued, device: deviceId, by: 'scheduler' },
        });
        done.push({ jobId, deviceId, runner: device.runner, assignment: rows[0].assignment });
      }
      await em.flush();
      for (const deviceId of new Set(done.map((a) => a.deviceId))) {
        const n = done.filter((a) => a.deviceId === deviceId).length;
        await sql(
          `update device set active_jobs = active_jobs + ?, last_assigned_at = ? where id = ?`,
          [n, now, deviceId],
        );
      }
      return done;
    });
    await this.dispatch(assigned);
  }

  /** Keeps `device.active_jobs` equal to the jobs assigned to or running on each device. */
  private async countActive(
    sql: <T extends object>(q: string, p?: unknown[]) => Promise<T[]>,
  ): Promise<void> {
    await sql(
      `update device d set active_jobs = c.n
         from (select d2.id, count(j.id)::int as n
                 from device d2
                 left join job j on j.device_id = d2.id and j.state in ${ACTIVE}
                group by d2.id) c
        where c.id = d.id and d.active_jobs <> c.n`,
    );
  }

  private async waiting(
    sql: <T extends object>(q: string, p?: unknown[]) => Promise<T[]>,
  ): Promise<WaitingJob[]> {
    const rows = await sql<{
      id: string;
      owner_id: string;
      service: string;
      priority: number;
      created_at: Date;
      target_device_id: string | null;
    }>(
      `select id, owner_id, service, priority, created_at, target_device_id from (
         select id, owner_id, service, priority, created_at, target_device_id,
                row_number() over (partition by owner_id, service, target_device_id
                                   order by priority desc, created_at, id) as rank
           from job
          where state = ? and device_id is null and (not_before is null or not_before <= now())
       ) w where rank <= ? limit 20000`,
      [JobState.Queued, HEADS_PER_QUEUE],
    );
    this.wakeForBackoff(sql);
    return rows.map((r) => ({
      id: r.id,
      ownerId: r.owner_id,
      service: r.service,
      priority: r.priority,
      createdAt: new Date(r.created_at),
      targetDeviceId: r.target_device_id ?? undefined,
    }));
  }

  /** Jobs waiting out a retry backoff: a pass when the first of them may run. */
  private wakeForBackoff(sql: <T extends object>(q: string, p?: unknown[]) => Promise<T[]>) {
    void sql<{ at: Date | null }>(
      `select min(not_before) as at from job where state = ? and not_before > now()`,
      [JobState.Queued],
    )
      .then(([row]) => {
        if (row?.at) {
          clearTimeout(this.wakeAt);
          const delay = Math.max(0, new Date(row.at).getTime() - Date.now()) + 10;
          this.wakeAt = setTimeout(() => this.kick(), delay);
          this.wakeAt.unref();
        }
      })
      .catch(() => {});
  }

  private async inputFor(
    sql: <T extends object>(q: string, p?: unknown[]) => Promise<T[]>,
    devices: DeviceRow[],
    waiting: WaitingJob[],
  ): Promise<PlacementInput> {
    const active = await sql<{ owner_id: string; service: string; n: number }>(
      `select owner_id, service, count(*)::int as n from job where state in ${ACTIVE}
        group by owner_id, service`,
    );
    const served = await sql<{ owner_id: string; at: Date }>(
      `select owner_id, max(assigned_at) as at from job
        where assigned_at > now() - interval '1 day' group by owner_id`,
    );
    return {
      lastServed: served.map((r) => ({ ownerId: r.owner_id, at: new Date(r.at) })),
      devices: devices.map((d): FreeDevice => ({
        id: d.id,
        services: d.services,
        slots: d.slots,
        active: Number(d.active),
        lastAssignedAt: d.last_assigned_at ? new Date(d.last_assigned_at) : undefined,
      })),
      waiting,
      active: active.map((a) => ({ ownerId: a.owner_id, service: a.service, count: a.n })),
      maxRunningPerUser: this.config.maxRunningPerUser,
      limits: (service) => this.limits(service),
    };
  }

  private limits(service: string) {
    const manifest = this.catalog.manifest(service);
    return {
      maxRunningPerUser: manifest?.maxRunningPerUser,
      maxConcurrentJobs: manifest?.maxConcurrentJobs,
    };
  }

  private async dispatch(assigned: Assigned[]): Promise<void> {
    for (const a of assigned) {
      await this.bus.publish({
        type: 'state',
        jobId: a.jobId,
        state: JobState.Assigned,
        at: new Date().toISOString(),
      });
      if (a.runner === 'agent') {
        await this.bus.wakeDevice(a.deviceId);
        continue;
      }
      try {
        await this.queues.enqueue({
          jobId: a.jobId,
          deviceId: a.deviceId,
          assignment: a.assignment,
        });
      } catch (err) {
        // PostgreSQL has the placement; the reconciler hands it over once Redis is back.
        this.logger.warn(`job ${a.jobId} placed but not enqueued: ${(err as Error).message}`);
      }
    }
  }

  /** Why a queued job is still waiting, computed now (never a stale stored reason). */
  async explain(job: JobView): Promise<string> {
    const em = this.em.fork();
    const sql = <T extends object>(query: string, params: unknown[] = []) =>
      em.getConnection().execute<T[]>(query, params, 'all');
    const downAfter = `${Math.ceil(this.config.deviceDownAfterMs / 1000)} seconds`;
    const [eligible] = await sql<{ n: number }>(
      `select count(*)::int as n from device
        where admin_state = 'enabled' and last_heartbeat_at > now() - ?::interval
          and ${job.targetDeviceId ? 'id = ?' : `(jsonb_exists(services, ?) or jsonb_exists(services, '*'))`}`,
      [downAfter, job.targetDeviceId ?? job.service],
    );
    const input = await this.inputFor(sql, [], []);
    if (job.notBefore && job.notBefore.getTime() > Date.now()) {
      return `waiting to retry at ${job.notBefore.toISOString()}`;
    }
    return waitingReason(
      {
        id: job.id,
        ownerId: job.owner.id,
        service: job.service,
        priority: job.priority,
        createdAt: job.createdAt,
        targetDeviceId: job.targetDeviceId,
      },
      { ...input, eligibleDevices: eligible?.n ?? 0 },
    );
  }
}
