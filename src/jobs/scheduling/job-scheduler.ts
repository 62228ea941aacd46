import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { Subscription } from 'rxjs';
import { CatalogService } from '../../catalog/catalog.service';
import { AppConfig } from '../../config';
import { DeviceEvents } from '../../devices/device-events';
import type { DeviceRunner } from '../../devices/device-state';
import { JobEventsBus } from '../job-events.bus';
import { JobState } from '../job-state';
import type { JobView } from '../job.mapper';
import { DeviceQueues } from './device-queues';
import { FreeDevice, place, PlacementInput, WaitingJob, waitingReason } from './placement';
import { jobsChanged } from '../job-view-cache';

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
  last_assigned_at: Date | string | null;
}

type Sql = <T extends object>(query: string, params?: unknown[]) => Promise<T[]>;

/** Raw statements on `em`'s connection, in its transaction if it has one. */
const sqlIn =
  (em: EntityManager): Sql =>
  <T extends object>(query: string, params: unknown[] = []) =>
    em.getConnection().execute<T[]>(query, params, 'all', em.getTransactionContext());

interface InputRow {
  waiting: Array<{
    id: string;
    owner_id: string;
    service: string;
    priority: number;
    created_at: string;
    target_device_id: string | null;
  }> | null;
  active: Array<{ owner_id: string; service: string; n: number }>;
  served: Array<{ owner_id: string; at: string }>;
  wake_at: Date | string | null;
}

/**
 * What placement weighs, as select columns (InputRow): the waiting jobs (the heads of each
 * owner's, service's and target's queue; only when `withWaiting`, a SQL condition, holds),
 * the running counts per owner and service, when each owner was last served, and when the
 * first job waiting out a retry backoff may run (a pass is set for then).
 */
function inputColumns(withWaiting: string): { sql: string; params: unknown[] } {
  return {
    sql: `case when ${withWaiting} then (select json_agg(w) from (
              select id, owner_id, service, priority, created_at, target_device_id from (
                select id, owner_id, service, priority, created_at, target_device_id,
                       row_number() over (partition by owner_id, service, target_device_id
                                          order by priority desc, created_at, id) as rank
                  from job
                 where state = ? and device_id is null
                   and (not_before is null or not_before <= now())
              ) heads where rank <= ? limit 20000) w) end as waiting,
         (select coalesce(json_agg(a), '[]') from (
            select owner_id, service, count(*)::int as n from job where state in ${ACTIVE}
             group by owner_id, service) a) as active,
         (select coalesce(json_agg(s), '[]') from (
            select owner_id, max(assigned_at) as at from job
             where assigned_at > now() - interval '1 day' group by owner_id) s) as served,
         (select min(not_before) from job where state = ? and not_before > now()) as wake_at`,
    params: [JobState.Queued, HEADS_PER_QUEUE, JobState.Queued],
  };
}

interface Assigned {
  jobId: string;
  deviceId: string;
  runner: DeviceRunner;
  assignment: number;
}

/** What a pass inside another transaction placed (see `JobScheduler.placeLocked`). */
export type Placed = readonly Assigned[];

/** The advisory lock that makes passes take turns, over all processes. */
const LOCK = `hashtext('labgate.scheduler')`;

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
  private readonly dispatching = new Set<Promise<void>>();
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

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.wakeAt);
    this.subscription?.unsubscribe();
    await Promise.all([this.running, ...this.dispatching]);
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
    // Few statements, each doing what it can: a pass runs after every submission and between
    // a submission and its program starting, so each round trip is latency.
    const assigned = await this.em.fork().transactional(async (em) => {
      const sql = sqlIn(em);
      await sql(`select pg_advisory_xact_lock(${LOCK})`);
      return this.placeAll(sql);
    });
    await this.dispatch(assigned);
  }

  /**
   * Takes the scheduler's lock for the caller's transaction if no other pass holds it (true),
   * without waiting: a SQL expression, for a statement the caller sends anyway.
   */
  static readonly TRY_LOCK = `pg_try_advisory_xact_lock(${LOCK})`;

  /**
   * A pass inside the caller's transaction (a submission's, before it commits), which holds
   * TRY_LOCK: the new jobs are placed as they are stored, with no pass of their own to wait
   * for. Hand what it returns to `placed()` once the transaction has committed.
   */
  placeLocked(em: EntityManager): Promise<Placed> {
    return this.placeAll(sqlIn(em));
  }

  /**
   * After the transaction of `placeLocked` committed: announces and hands over its placements
   * (in the background; shutting down waits for it).
   */
  placed(placed: Placed): void {
    if (placed.length === 0) {
      return;
    }
    const dispatching: Promise<void> = this.dispatch(placed)
      .catch((err: Error) => this.logger.warn(`placements not handed over: ${err.message}`))
      .finally(() => this.dispatching.delete(dispatching));
    this.dispatching.add(dispatching);
  }

  private async placeAll(sql: Sql): Promise<Assigned[]> {
    const { devices, input } = await this.freeDevicesAndInput(sql);
    if (devices.length === 0 || input.waiting.length === 0) {
      return [];
    }
    const placements = place(input);
    const byId = new Map(devices.map((d) => [d.id, d]));
    const now = new Date();
    const done: Assigned[] = [];
    for (const { jobId, deviceId } of placements) {
      const device = byId.get(deviceId)!;
      const assignment = await this.assign(sql, jobId, device, now);
      if (assignment !== undefined) {
        done.push({ jobId, deviceId, runner: device.runner, assignment });
      }
    }
    return done;
  }

  /**
   * What a pass needs, in one statement: the enabled, live devices with a free slot, each with
   * the jobs assigned to or running on it counted now (`device.active_jobs`, what listings
   * show, is set to those counts on the way), and what placement weighs (`inputFor`; the
   * waiting jobs only when a slot is free).
   */
  private async freeDevicesAndInput(
    sql: Sql,
  ): Promise<{ devices: DeviceRow[]; input: PlacementInput }> {
    const downAfter = `${Math.ceil(this.config.deviceDownAfterMs / 1000)} seconds`;
    const columns = inputColumns('exists (select 1 from free)');
    const [row] = await sql<InputRow & { devices: DeviceRow[] }>(
      `with counts as (
         select d.id, count(j.id)::int as n
           from device d
           left join job j on j.device_id = d.id and j.state in ${ACTIVE}
          group by d.id),
       fix as (
         update device d set active_jobs = c.n
           from counts c where c.id = d.id and d.active_jobs <> c.n),
       free as (
         select d.id, d.name, d.runner, d.services, d.slots, c.n as active, d.last_assigned_at
           from device d
           join counts c on c.id = d.id
          where d.admin_state = 'enabled'
            and d.last_heartbeat_at > now() - ?::interval
            and c.n < d.slots)
       select (select coalesce(json_agg(free), '[]') from free) as devices, ${columns.sql}`,
      [downAfter, ...columns.params],
    );
    return { devices: row.devices, input: this.toInput(row, row.devices) };
  }

  /**
   * Places one job on a device in one statement: the job (if still queued and unplaced), its
   * event and audit rows, and the device's count. Returns the job's new assignment number, or
   * undefined when the job was cancelled meanwhile.
   */
  private async assign(
    sql: Sql,
    jobId: string,
    device: DeviceRow,
    now: Date,
  ): Promise<number | undefined> {
    const [row] = await sql<{ assignment: number }>(
      `with placed as (
         update job set state = ?, device_id = ?, assignment = assignment + 1, reason = null,
                worker = null, updated_at = ?, assigned_at = ?
          where id = ? and state = ? and device_id is null
         returning id, assignment, owner_id, service),
       event as (
         insert into job_event (job_id, at, state, previous_state, reason, actor, data)
         select id, ?, ?, ?, ?, 'scheduler',
                jsonb_build_object('ownerId', owner_id, 'service', service, 'deviceId', ?::text)
           from placed),
       audit as (
         insert into audit_event (id, at, actor_kind, action, target_type, target_id, details)
         select gen_random_uuid(), ?, 'system', ?, 'job', id::text,
                jsonb_build_object('from', ?::text, 'device', ?::text, 'by', 'scheduler')
           from placed),
       counted as (
         update device set active_jobs = active_jobs + 1, last_assigned_at = ?
          where id = ? and exists (select 1 from placed))
       select assignment from placed`,
      [
        JobState.Assigned,
        device.id,
        now,
        now,
        jobId,
        JobState.Queued,
        now,
        JobState.Assigned,
        JobState.Queued,
        `placed on ${device.name}`,
        device.id,
        now,
        `job.${JobState.Assigned}`,
        JobState.Queued,
        device.id,
        now,
        device.id,
      ],
    );
    return row?.assignment;
  }

  /** What placement weighs (see `inputColumns`), without the waiting jobs (`explain`). */
  private async inputFor(sql: Sql): Promise<PlacementInput> {
    const columns = inputColumns('false');
    const [row] = await sql<InputRow>(`select ${columns.sql}`, columns.params);
    return this.toInput(row, []);
  }

  private toInput(row: InputRow, devices: DeviceRow[]): PlacementInput {
    if (row.wake_at) {
      this.wakeAtTime(new Date(row.wake_at));
    }
    return {
      lastServed: row.served.map((r) => ({ ownerId: r.owner_id, at: new Date(r.at) })),
      devices: devices.map((d): FreeDevice => ({
        id: d.id,
        services: d.services,
        slots: d.slots,
        active: Number(d.active),
        lastAssignedAt: d.last_assigned_at ? new Date(d.last_assigned_at) : undefined,
      })),
      waiting: (row.waiting ?? []).map((r): WaitingJob => ({
        id: r.id,
        ownerId: r.owner_id,
        service: r.service,
        priority: r.priority,
        createdAt: new Date(r.created_at),
        targetDeviceId: r.target_device_id ?? undefined,
      })),
      active: row.active.map((a) => ({ ownerId: a.owner_id, service: a.service, count: a.n })),
      maxRunningPerUser: this.config.maxRunningPerUser,
      limits: (service) => this.limits(service),
    };
  }

  /** Jobs waiting out a retry backoff: a pass when the first of them may run. */
  private wakeAtTime(at: Date): void {
    clearTimeout(this.wakeAt);
    const delay = Math.max(0, at.getTime() - Date.now()) + 10;
    this.wakeAt = setTimeout(() => this.kick(), delay);
    this.wakeAt.unref();
  }

  private limits(service: string) {
    const manifest = this.catalog.manifest(service);
    return {
      maxRunningPerUser: manifest?.maxRunningPerUser,
      maxConcurrentJobs: manifest?.maxConcurrentJobs,
    };
  }

  private async dispatch(assigned: readonly Assigned[]): Promise<void> {
    jobsChanged(...assigned.map((a) => a.jobId));
    for (const a of assigned) {
      // Announced and handed over at once (publish is sent first): the hand-over is what the
      // job's start waits for, and the worker's own round trips come before its "running".
      const announced = this.bus.publish({
        type: 'state',
        jobId: a.jobId,
        state: JobState.Assigned,
        at: new Date().toISOString(),
      });
      const handedOver = a.runner === 'agent' ? this.bus.wakeDevice(a.deviceId) : this.handOver(a);
      await Promise.all([announced, handedOver]);
    }
  }

  private async handOver(a: Assigned): Promise<void> {
    try {
      await this.queues.enqueue({ jobId: a.jobId, deviceId: a.deviceId, assignment: a.assignment });
    } catch (err) {
      // PostgreSQL has the placement; the reconciler hands it over once Redis is back.
      this.logger.warn(`job ${a.jobId} placed but not enqueued: ${(err as Error).message}`);
    }
  }

  /** Why a queued job is still waiting, computed now (never a stale stored reason). */
  async explain(job: JobView): Promise<string> {
    const sql = sqlIn(this.em.fork());
    const downAfter = `${Math.ceil(this.config.deviceDownAfterMs / 1000)} seconds`;
    const [eligible] = await sql<{ n: number }>(
      `select count(*)::int as n from device
        where admin_state = 'enabled' and last_heartbeat_at > now() - ?::interval
          and ${job.targetDeviceId ? 'id = ?' : `(jsonb_exists(services, ?) or jsonb_exists(services, '*'))`}`,
      [downAfter, job.targetDeviceId ?? job.service],
    );
    const input = await this.inputFor(sql);
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
