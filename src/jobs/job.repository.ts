import { EntityRepository } from '@mikro-orm/postgresql';
import { JobEvent, type JobEventData } from './job-event.entity';
import { canTransition, JobState, statesBefore } from './job-state';
import type { RequestOrigin } from '../common/auth.decorators';
import type { Job } from './job.entity';
import type { JobView } from './job.mapper';
import { jobsChanged } from './job-view-cache';

/** MikroORM has pg hand timestamps over as the text PostgreSQL sent, which it parses itself. */
const timestamp = (text: string | null) => (text === null ? undefined : new Date(text));

interface JobViewRow {
  id: string;
  service: string;
  service_version: string;
  owner_id: string;
  state: JobState;
  reason: string | null;
  progress: number;
  progress_message: string | null;
  inputs: Job['inputs'];
  input_files: Job['inputFiles'];
  attempts: number;
  priority: number;
  device_id: string | null;
  target_device_id: string | null;
  batch_id: string | null;
  not_before: string | null;
  metrics: Record<string, unknown> | null;
  result_size: string | null;
  result_sha256: string | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
  token_hash: string;
}

type JobFields = Pick<
  Job,
  | 'progress'
  | 'progressMessage'
  | 'attempts'
  | 'worker'
  | 'metrics'
  | 'resultSize'
  | 'resultSha256'
  | 'startedAt'
  | 'finishedAt'
  | 'notBefore'
  | 'externalId'
>;

/** Columns a transition may set with the state; null clears one. */
export type JobPatch = { [K in keyof JobFields]?: JobFields[K] | null } & {
  device?: string | null;
};

export interface Transition {
  to: JobState;
  /** Only from these states (default: every state the lifecycle allows). */
  from?: JobState[];
  reason?: string;
  /** A user id, `worker:<host:pid>`, or `system`. */
  actor: string;
  actorUserId?: string;
  patch?: JobPatch;
  /** Only while the job is placed on this device (agent and cluster calls). */
  onDevice?: string;
  /** Only while this is the job's placement (its `assignment` number). */
  inAssignment?: number;
  /** The move starts an attempt: `attempts` goes up by one. */
  countsAttempt?: boolean;
}

export interface TransitionResult {
  job: Job;
  previous: JobState;
  event: JobEvent;
}

/** The states that end a run. */
const RUN_ENDS = [JobState.Succeeded, JobState.Failed, JobState.Cancelled] as const;

/**
 * The outbox payload of a job's event (JobEventData), built by PostgreSQL from the moved row
 * (`moved`): who and what it concerns and, on success, the result; keys without a value are
 * left out (top level only: metrics keep their own nulls), timestamps as `toISOString()`.
 */
const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
const EVENT_DATA = `(select coalesce(jsonb_object_agg(key, value), '{}'::jsonb)
   from jsonb_each(
     jsonb_build_object(
       'ownerId', moved.owner_id, 'service', moved.service,
       'serviceVersion', moved.service_version, 'deviceId', moved.device_id,
       'batchId', moved.batch_id)
     || case when moved.state = '${JobState.Succeeded}' then jsonb_build_object(
          'metrics', moved.metrics,
          'resultKey', case when moved.result_sha256 is not null
                            then 'jobs/' || moved.id || '/result.tar.gz' end,
          'resultSize', moved.result_size,
          'resultSha256', moved.result_sha256,
          'startedAt', to_char(moved.started_at at time zone 'UTC', ${ISO}),
          'finishedAt', to_char(moved.finished_at at time zone 'UTC', ${ISO}))
        else '{}'::jsonb end)
  where value <> 'null'::jsonb)`;

/** A job a submission stores (`queued`), with what its event and audit line say. */
export interface NewJob {
  id: string;
  service: string;
  serviceVersion: string;
  inputs: Job['inputs'];
  inputFiles: Job['inputFiles'];
  priority: number;
  tokenHash: string;
  targetDeviceId?: string;
  batchId?: string;
  idempotencyKey?: string;
  requestHash?: string;
  /** The `queued` event's data (the outbox payload). */
  eventData: Record<string, unknown>;
  /** The `job.submit` audit line's details. */
  auditDetails: Record<string, unknown>;
}

/** Who submitted, from where, and when. */
export interface Submitter {
  userId: string;
  origin: RequestOrigin;
  at: Date;
}

/** How many jobs of one service are in one state. */
export interface JobCount {
  service: string;
  state: JobState;
  count: number;
}

/** Finished runs of one service: cumulative counts per upper bound (seconds), sum and count. */
export interface RunTimeHistogram {
  service: string;
  /** `buckets[i]`: runs that took at most `bounds[i]` seconds. */
  buckets: number[];
  sumSeconds: number;
  count: number;
}

export class JobRepository extends EntityRepository<Job> {
  /**
   * Stores submitted jobs, each with its `queued` event and `job.submit` audit line, in one
   * statement: between a submission and its job starting, every round trip is latency. `also`
   * is a SQL expression the same statement evaluates (the scheduler's try-lock): its value is
   * returned. Runs in the entity manager's transaction, if it has one.
   */
  async insertSubmitted(jobs: NewJob[], by: Submitter, also = 'null'): Promise<unknown> {
    const em = this.getEntityManager();
    const rows = jobs.map((j) => ({
      id: j.id,
      service: j.service,
      service_version: j.serviceVersion,
      inputs: j.inputs,
      input_files: j.inputFiles,
      priority: j.priority,
      token_hash: j.tokenHash,
      target_device_id: j.targetDeviceId ?? null,
      batch_id: j.batchId ?? null,
      idempotency_key: j.idempotencyKey ?? null,
      request_hash: j.requestHash ?? null,
      event_data: j.eventData,
      audit_details: j.auditDetails,
    }));
    const insert = em.getConnection().execute<Array<{ also: unknown }>>(
      `with submitted as (
         select * from jsonb_to_recordset(?::jsonb) as r(
           id uuid, service text, service_version text, inputs jsonb, input_files jsonb,
           priority int, token_hash text, target_device_id uuid, batch_id uuid,
           idempotency_key text, request_hash text, event_data jsonb, audit_details jsonb)),
       jobs as (
         insert into job (id, service, service_version, owner_id, state, inputs, input_files,
                          token_hash, idempotency_key, request_hash, progress, attempts,
                          priority, assignment, target_device_id, batch_id, created_at,
                          updated_at)
         select id, service, service_version, ?, ?, inputs, input_files, token_hash,
                idempotency_key, request_hash, 0, 0, priority, 0, target_device_id, batch_id,
                ?, ?
           from submitted),
       events as (
         insert into job_event (job_id, at, state, actor, data)
         select id, ?, ?, ?, event_data from submitted),
       audit as (
         insert into audit_event (id, at, actor_id, actor_kind, action, target_type, target_id,
                                  ip, request_id, details)
         select gen_random_uuid(), ?, ?, 'user', 'job.submit', 'job', id::text, ?, ?,
                audit_details
           from submitted)
       select ${also} as also`,
      [
        JSON.stringify(rows),
        by.userId,
        JobState.Queued,
        by.at,
        by.at,
        by.at,
        JobState.Queued,
        by.userId,
        by.at,
        by.userId,
        by.origin.ip ?? null,
        by.origin.requestId ?? null,
      ],
      'all',
      em.getTransactionContext(),
    );
    // Raw statements reject with the driver's error: a duplicate Idempotency-Key is told apart
    // as the ORM's own writes tell it (UniqueConstraintViolationException).
    const [row] = await insert.catch((err: Error) => {
      throw em.getPlatform().getExceptionConverter().convertException(err);
    });
    return row.also;
  }

  /**
   * A job's page and ticket hash in one statement, as a plain object: no entity is hydrated
   * and no identity map filled. GET /jobs/:id is what clients poll (a TOMAAT-style client
   * polls its ticket until the result is there), so this read is kept to one round trip and
   * little else.
   */
  async findView(id: string): Promise<(JobView & { tokenHash: string }) | undefined> {
    const row = (await this.em.getConnection().execute<JobViewRow>(
      `select id, service, service_version, owner_id, state, reason, progress, progress_message,
                inputs, input_files, attempts, priority, device_id, target_device_id, batch_id,
                not_before, metrics, result_size, result_sha256, created_at, updated_at,
                started_at, finished_at, token_hash
           from job where id = ?`,
      [id],
      'get',
    )) as JobViewRow | undefined;
    if (!row) {
      return undefined;
    }
    return {
      id: row.id,
      service: row.service,
      serviceVersion: row.service_version,
      owner: { id: row.owner_id },
      state: row.state,
      reason: row.reason ?? undefined,
      progress: row.progress,
      progressMessage: row.progress_message ?? undefined,
      inputs: row.inputs,
      inputFiles: row.input_files,
      attempts: row.attempts,
      priority: row.priority,
      device: row.device_id ? { id: row.device_id } : undefined,
      targetDeviceId: row.target_device_id ?? undefined,
      batchId: row.batch_id ?? undefined,
      notBefore: timestamp(row.not_before),
      metrics: row.metrics ?? undefined,
      resultSize: row.result_size === null ? undefined : Number(row.result_size),
      resultSha256: row.result_sha256 ?? undefined,
      createdAt: new Date(row.created_at),
      updatedAt: new Date(row.updated_at),
      startedAt: timestamp(row.started_at),
      finishedAt: timestamp(row.finished_at),
      tokenHash: row.token_hash,
    };
  }

  /** Jobs per service and state (one grouped scan; for monitoring). */
  async countByServiceAndState(): Promise<JobCount[]> {
    const rows = await this.getEntityManager()
      .getConnection()
      .execute<Array<{ service: string; state: JobState; count: string }>>(
        'select service, state, count(*) as count from job group by service, state',
      );
    return rows.map((r) => ({ service: r.service, state: r.state, count: Number(r.count) }));
  }

  /**
   * Run times of finished runs per service, from the job events: each move from running to a
   * final state ends a run that began at the job's previous event (its move to running). Job
   * events are append-only, so the counts only grow, as a Prometheus histogram's must; the job
   * row would not do (a retried job clears its finished_at).
   */
  async runTimeHistogram(bounds: readonly number[]): Promise<RunTimeHistogram[]> {
    const buckets = bounds.map((_, i) => `count(*) filter (where seconds <= ?) as b${i}`);
    const rows = await this.getEntityManager()
      .getConnection()
      .execute<Array<Record<string, string | null>>>(
        `select service, ${buckets.join(', ')}, coalesce(sum(seconds), 0) as sum, count(*) as count
           from (select e.state, e.previous_state, coalesce(e.data->>'service', '') as service,
                        extract(epoch from e.at - lag(e.at) over (
                          partition by e.job_id order by e.id)) as seconds
                   from job_event e
                  where e.state in (?, ?, ?, ?)) runs
          where previous_state = ? and state in (?, ?, ?) and seconds is not null
          group by service`,
        [...bounds, JobState.Running, ...RUN_ENDS, JobState.Running, ...RUN_ENDS],
      );
    return rows.map((r) => ({
      service: r.service ?? '',
      buckets: bounds.map((_, i) => Number(r[`b${i}`])),
      sumSeconds: Number(r.sum),
      count: Number(r.count),
    }));
  }

  /**
   * Moves a job to another state in one statement: the row is locked, the move is checked
   * against the lifecycle and guarded by the state it saw (so two workers can never both move
   * one job), and the job event (outbox) and audit row are written with it, all or nothing.
   * Returns undefined when the job is not in an allowed state (someone else moved it first).
   *
   * One statement rather than the unit of work: every job passes here several times, and each
   * round trip is latency between a submission and its program starting.
   */
  async transition(id: string, change: Transition): Promise<TransitionResult | undefined> {
    const allowed = (change.from ?? statesBefore(change.to)).filter((from) =>
      canTransition(from, change.to),
    );
    if (allowed.length === 0) {
      return undefined;
    }
    const em = this.getEntityManager().fork();
    const now = new Date();
    const { columns, values } = this.patchColumns({ ...change.patch });
    const onDevice = change.onDevice !== undefined ? 'and prev.device_id = ?' : '';
    const inAssignment = change.inAssignment !== undefined ? 'and prev.assignment = ?' : '';
    const attempts = change.countsAttempt ? ', attempts = j.attempts + 1' : '';
    const reason = change.reason ?? null;
    const [row] = await em.getConnection().execute<
      Array<
        Record<string, unknown> & {
          previous_state: JobState;
          event_id: string;
          event_data: JobEventData;
        }
      >
    >(
      `with prev as (select id, state, device_id, assignment from job where id = ? for update),
       moved as (
         update job j set state = ?, reason = ?, updated_at = ?${columns}${attempts}
           from prev
          where j.id = prev.id and prev.state in (${allowed.map(() => '?').join(', ')})
                ${onDevice} ${inAssignment}
         returning j.*, prev.state as previous_state),
       audit as (
         insert into audit_event
           (id, at, actor_id, actor_kind, action, target_type, target_id, details)
         select gen_random_uuid(), ?, ?, ?, ?, 'job', moved.id::text,
                jsonb_strip_nulls(jsonb_build_object(
                  'from', moved.previous_state, 'reason', ?::text, 'by', ?::text))
           from moved),
       event as (
         insert into job_event (job_id, at, state, previous_state, reason, actor, data)
         select moved.id, ?, moved.state, moved.previous_state, moved.reason, ?, ${EVENT_DATA}
           from moved
         returning id, data)
       select moved.*, event.id as event_id, event.data as event_data from moved, event`,
      [
        id,
        change.to,
        reason,
        now,
        ...values,
        ...allowed,
        ...(change.onDevice !== undefined ? [change.onDevice] : []),
        ...(change.inAssignment !== undefined ? [change.inAssignment] : []),
        now,
        change.actorUserId ?? null,
        change.actorUserId ? 'user' : 'system',
        `job.${change.to}`,
        reason,
        change.actor,
        now,
        change.actor,
      ],
    );
    if (!row) {
      return undefined;
    }
    jobsChanged(id);
    const { previous_state: previous, event_id: eventId, event_data: data, ...jobRow } = row;
    const job = em.map<Job>('Job', jobRow);
    const event = Object.assign(new JobEvent(), {
      id: String(eventId),
      jobId: id,
      at: now,
      state: change.to,
      previousState: previous,
      reason: change.reason,
      actor: change.actor,
      data,
    });
    return { job, previous, event };
  }

  /** `, column = ?` for each field of a patch, with its value as PostgreSQL takes it. */
  private patchColumns(patch: JobPatch): { columns: string; values: unknown[] } {
    const meta = this.getEntityManager().getMetadata().get('Job');
    const sets: string[] = [];
    const values: unknown[] = [];
    for (const [field, value] of Object.entries(patch)) {
      if (value === undefined) {
        continue;
      }
      const property = meta.properties[field === 'device' ? 'device' : field];
      if (!property) {
        throw new Error(`not a job column: ${field}`);
      }
      const column = property.fieldNames[0];
      const json = property.type === 'json' || property.columnTypes?.[0] === 'jsonb';
      sets.push(json ? `, ${column} = ?::jsonb` : `, ${column} = ?`);
      values.push(json && value !== null ? JSON.stringify(value) : value);
    }
    return { columns: sets.join(''), values };
  }
}
