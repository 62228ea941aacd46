import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import {
  ConflictException,
  HttpStatus,
  Injectable,
  Logger,
  NotFoundException,
} from '@nestjs/common';
import { EntityManager, UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import type { Request } from 'express';
import { AuditService } from '../audit/audit.service';
import { hashSecret, newSecret } from '../auth/secrets';
import { CatalogService } from '../catalog/catalog.service';
import { validateFieldValues } from '../catalog/input-validation';
import type { RequestOrigin } from '../common/auth.decorators';
import { AppConfig } from '../config';
import { decodeCursor, encodeCursor } from '../common/pagination';
import { hasRole, type UserPrincipal } from '../common/principal';
import { clipInput } from '../common/caller-input';
import { ProblemException, validationProblem } from '../common/problem';
import { withTimeout } from '../common/with-timeout';
import { BlobStorage } from '../storage/blob-storage';
import type {
  JobDto,
  JobPageDto,
  ListJobsQuery,
  SubmittedBatchDto,
  SubmittedJobDto,
} from './dto/job.dto';
import { JobEventsBus } from './job-events.bus';
import { isFinal, JobState } from './job-state';
import { Job } from './job.entity';
import type { JobCount, NewJob, RunTimeHistogram, Submitter } from './job.repository';
import { toJobDto, toSubmittedDto, type JobView } from './job.mapper';
import { parseMultipartSubmission, ParsedSubmission } from './submission-parser';
import { DeviceCommandsService } from '../devices/device-commands.service';
import { Device } from '../devices/device.entity';
import { offersService } from '../devices/device-state';
import { takePlacementRequest } from './placement-request';
import { JobScheduler, type Placed } from './scheduling/job-scheduler';
import { DeviceQueues } from './scheduling/device-queues';
import { JobViewCache, jobsChanged } from './job-view-cache';

export const TICKET_PREFIX = 'lgt_';
/** How long a cancel or requeue waits for Redis (its queue entry, a cluster cancel). */
const REDIS_WAIT_MS = 2_000;
const IDEMPOTENCY_TTL_MS = 24 * 3600_000;

/** What makes two submissions "the same request": service, values and file contents. */
function requestHash(parsed: ParsedSubmission): string {
  const fields = Object.fromEntries(
    Object.entries(parsed.fields).sort(([a], [b]) => a.localeCompare(b)),
  );
  const files = parsed.files
    .map((f) => ({ input: f.input, filename: f.filename, sha256: f.sha256 }))
    .sort((a, b) => a.input.localeCompare(b.input));
  return createHash('sha256')
    .update(JSON.stringify({ service: parsed.manifest.key, fields, files }))
    .digest('hex');
}

/** An operator's `jobs:requeue` of one job: from which states, by whom, and why. */
export interface RequeueRequest {
  /** Only from these states (the lifecycle allows assigned, running and failed). */
  from: JobState[];
  /** The job event's actor (`system:cli`, or a user id). */
  actor: string;
  actorUserId?: string;
  reason: string;
}

/** Who may see a job: its owner, an admin, or whoever holds its ticket. */
export interface JobViewer {
  principal?: UserPrincipal;
  ticket?: string;
}

function mayView(job: { owner: { id: string }; tokenHash: string }, viewer: JobViewer): boolean {
  return (
    (viewer.principal?.kind === 'user' && job.owner.id === viewer.principal.userId) ||
    hasRole(viewer.principal, 'admin') ||
    (viewer.ticket !== undefined && hashSecret(viewer.ticket) === job.tokenHash)
  );
}

function notVisible(id: string): NotFoundException {
  return new NotFoundException(`There is no job ${id}, or you may not see it.`);
}

@Injectable()
export class JobsService {
  private readonly logger = new Logger(JobsService.name);

  constructor(
    private readonly em: EntityManager,
    private readonly catalog: CatalogService,
    private readonly storage: BlobStorage,
    private readonly bus: JobEventsBus,
    private readonly audit: AuditService,
    private readonly config: AppConfig,
    private readonly scheduler: JobScheduler,
    private readonly queues: DeviceQueues,
    private readonly commands: DeviceCommandsService,
    private readonly views: JobViewCache<JobView & { tokenHash: string }>,
  ) {}

  async submit(
    owner: UserPrincipal,
    req: Request,
    origin: RequestOrigin,
    idempotencyKey?: string,
  ): Promise<SubmittedJobDto | SubmittedBatchDto> {
    if (idempotencyKey !== undefined && !/^[\x21-\x7e]{1,200}$/.test(idempotencyKey)) {
      throw validationProblem([
        {
          field: 'Idempotency-Key',
          message: 'Idempotency-Key must be 1-200 printable ASCII characters',
        },
      ]);
    }
    const jobId = randomUUID();
    // The service's default priority comes with the check that it may be used (one read).
    let servicePriority: number | undefined;
    const resolveService = async (key: string) => {
      const usable = await this.catalog.usable(key, owner);
      servicePriority = usable.priority;
      return usable.manifest;
    };
    let parsed: ParsedSubmission;
    if (req.is('multipart/form-data')) {
      parsed = await parseMultipartSubmission(
        req,
        {
          jobId,
          storage: this.storage,
          resolveService,
          scratchDir: join(this.config.varDir, 'tmp'),
          payloadLimits: {
            maxFiles: this.config.maxPayloadFiles,
            maxBytes: this.config.maxPayloadBytes,
          },
        },
        { maxFields: 200, maxFiles: 50 },
      );
    } else {
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (typeof body.service !== 'string') {
        throw validationProblem([{ field: 'service', message: 'service is required' }]);
      }
      const inputs = body.inputs ?? {};
      if (typeof inputs !== 'object' || Array.isArray(inputs)) {
        throw validationProblem([{ field: 'inputs', message: 'inputs must be an object' }]);
      }
      const unknown = Object.keys(body).filter(
        (k) => !['service', 'inputs', 'targets', 'priority'].includes(k),
      );
      if (unknown.length > 0) {
        throw validationProblem(
          unknown
            .map((key) => clipInput(key))
            .map((field) => ({
              field,
              message: `${field} is not a submission field (service, inputs, targets, priority)`,
            })),
        );
      }
      parsed = {
        manifest: await resolveService(body.service),
        fields: {
          ...(inputs as Record<string, unknown>),
          ...(body.targets !== undefined ? { targets: body.targets } : {}),
          ...(body.priority !== undefined ? { priority: body.priority } : {}),
        },
        files: [],
      };
    }
    try {
      if (idempotencyKey !== undefined) {
        const replay = await this.replayed(owner, idempotencyKey, parsed);
        if (replay) {
          await this.storage.delete(`jobs/${jobId}/`);
          return replay;
        }
      }
      return await this.create(owner, jobId, parsed, origin, idempotencyKey, servicePriority);
    } catch (err) {
      await this.storage.delete(`jobs/${jobId}/`);
      throw err;
    }
  }

  /**
   * The first job submitted with this key in the last 24 h, if the request is the same; a 409
   * if the key was used for a different request. Tickets are shown once: a replay answers
   * without one (the owner's credentials open the job).
   */
  private async replayed(owner: UserPrincipal, key: string, parsed: ParsedSubmission) {
    const previous = await this.em
      .fork()
      .findOne(Job, { owner: owner.userId, idempotencyKey: key }, { populate: ['requestHash'] });
    if (!previous) {
      return undefined;
    }
    if (Date.now() - previous.createdAt.getTime() > IDEMPOTENCY_TTL_MS) {
      await this.em.fork().nativeUpdate(Job, previous.id, { idempotencyKey: null });
      return undefined;
    }
    if (previous.requestHash !== requestHash(parsed)) {
      throw new ProblemException(
        HttpStatus.CONFLICT,
        'This Idempotency-Key was already used for a different request; use a new key.',
      );
    }
    return previous.batchId ? this.batchDto(previous.batchId) : toSubmittedDto(previous);
  }

  private async batchDto(batchId: string, tokens = new Map<string, string>()) {
    const jobs = await this.em
      .fork()
      .find(Job, { batchId }, { orderBy: { createdAt: 'asc', id: 'asc' } });
    return { batchId, jobs: jobs.map((j) => toSubmittedDto(j, tokens.get(j.id))) };
  }

  /** The devices of a batch session: each must exist, be enabled and offer the service. */
  private async checkTargets(service: string, targets: string[]) {
    const devices = await this.em.fork().find(Device, { id: { $in: targets } });
    const errors = targets.flatMap((id, i) => {
      const device = devices.find((d) => d.id === id);
      const field = `targets[${i}]`;
      if (!device) {
        return [{ field, message: `there is no device ${id}` }];
      }
      if (device.adminState !== 'enabled') {
        return [{ field, message: `device ${device.name} is ${device.adminState}` }];
      }
      if (!offersService(device, service)) {
        return [{ field, message: `device ${device.name} does not offer ${service}` }];
      }
      return [];
    });
    if (errors.length > 0) {
      throw validationProblem(errors);
    }
  }

  private async create(
    owner: UserPrincipal,
    jobId: string,
    parsed: ParsedSubmission,
    origin: RequestOrigin,
    idempotencyKey?: string,
    servicePriority?: number,
  ): Promise<SubmittedJobDto | SubmittedBatchDto> {
    const { manifest, files } = parsed;
    const {
      inputs: fields,
      request,
      errors: placementErrors,
    } = takePlacementRequest(parsed.fields);
    const { values, errors } = validateFieldValues(
      manifest,
      fields,
      files.map((f) => f.input),
    );
    if (errors.length > 0 || placementErrors.length > 0) {
      throw validationProblem([...placementErrors, ...errors]);
    }
    if (request.priority !== undefined && !hasRole(owner, 'admin')) {
      throw new ProblemException(HttpStatus.FORBIDDEN, "Only admins set a job's priority.");
    }
    if (request.targets) {
      await this.checkTargets(manifest.key, request.targets);
    }
    const priority =
      request.priority ?? servicePriority ?? (await this.catalog.priorityOf(manifest));
    const targets: Array<string | undefined> = request.targets ?? [undefined];
    const batchId = request.targets ? randomUUID() : undefined;
    const jobIds = targets.map((_, i) => (i === 0 ? jobId : randomUUID()));
    // Each job of a batch owns its input files (retention removes a job's files with it).
    const filesOf = new Map<string, typeof files>([[jobId, files]]);
    for (const id of jobIds.slice(1)) {
      filesOf.set(id, await this.copyFiles(files, jobId, id));
    }
    const tokens = new Map(jobIds.map((id) => [id, newSecret(TICKET_PREFIX)]));
    const newJobs = jobIds.map((id, i): NewJob => {
      const own = filesOf.get(id)!;
      const fileValues = Object.fromEntries(own.map((f) => [f.input, f.path]));
      return {
        id,
        service: manifest.key,
        serviceVersion: manifest.version,
        inputs: { ...values, ...fileValues },
        inputFiles: own,
        priority,
        tokenHash: hashSecret(tokens.get(id)!),
        targetDeviceId: targets[i],
        batchId,
        idempotencyKey: i === 0 ? idempotencyKey : undefined,
        requestHash: i === 0 && idempotencyKey ? requestHash(parsed) : undefined,
        eventData: {
          ownerId: owner.userId,
          service: manifest.key,
          serviceVersion: manifest.version,
          deviceId: targets[i],
          batchId,
        },
        auditDetails: { service: manifest.key, device: targets[i], batchId },
      };
    });
    const submitter = { userId: owner.userId, origin, at: new Date() };
    let placed: Placed | undefined;
    try {
      placed = await this.store(newJobs, submitter);
    } catch (err) {
      for (const id of jobIds.slice(1)) {
        await this.storage.delete(`jobs/${id}/`);
      }
      // The same key submitted twice at once: the loser answers like a replay.
      if (err instanceof UniqueConstraintViolationException && idempotencyKey) {
        const replay = await this.replayed(owner, idempotencyKey, parsed);
        if (replay) {
          return replay;
        }
      }
      throw err;
    }
    const assigned = new Set<string>();
    if (placed) {
      placed.forEach((a) => assigned.add(a.jobId));
      this.scheduler.placed(placed);
    } else {
      this.scheduler.kick();
    }
    const submitted = (job: NewJob) =>
      toSubmittedDto(
        {
          id: job.id,
          state: assigned.has(job.id) ? JobState.Assigned : JobState.Queued,
          targetDeviceId: job.targetDeviceId,
        },
        tokens.get(job.id),
      );
    if (batchId) {
      return { batchId, jobs: newJobs.map(submitted) };
    }
    return submitted(newJobs[0]);
  }

  /**
   * Stores a submission's jobs and, unless another scheduling pass is under way, places them
   * in the same transaction: a job that can start is handed over as soon as it is stored, with
   * no pass of its own to wait for. A placement that fails (a deadlock with another writer,
   * say) does not fail the submission: its jobs are stored again on their own, and the next
   * pass places them.
   */
  private async store(jobs: NewJob[], submitter: Submitter): Promise<Placed | undefined> {
    let placing = false;
    try {
      return await this.em.fork().transactional(async (em) => {
        const locked = await em
          .getRepository(Job)
          .insertSubmitted(jobs, submitter, JobScheduler.TRY_LOCK);
        placing = true;
        return locked === true ? await this.scheduler.placeLocked(em) : undefined;
      });
    } catch (err) {
      if (!placing) {
        throw err;
      }
      this.logger.warn(`submission stored without placing it: ${(err as Error).message}`);
      await this.em.fork().getRepository(Job).insertSubmitted(jobs, submitter);
      return undefined;
    }
  }

  private async copyFiles(files: ParsedSubmission['files'], from: string, to: string) {
    const copies: ParsedSubmission['files'] = [];
    for (const file of files) {
      const key = file.key.replace(`jobs/${from}/`, `jobs/${to}/`);
      await this.storage.write(key, this.storage.read(file.key));
      copies.push({ ...file, key });
    }
    return copies;
  }

  /** The job if the viewer may see it; 404 otherwise (no hint that it exists). */
  async visible(id: string, viewer: JobViewer): Promise<Job> {
    const job = await this.em.findOne(Job, id, { populate: ['tokenHash'] });
    if (!job || !mayView(job, viewer)) {
      throw notVisible(id);
    }
    return job;
  }

  /** Jobs per service and state, for monitoring. */
  countByServiceAndState(): Promise<JobCount[]> {
    return this.em.fork().getRepository(Job).countByServiceAndState();
  }

  /** Finished runs per service in cumulative run-time buckets (seconds), for monitoring. */
  runTimeHistogram(bounds: readonly number[]): Promise<RunTimeHistogram[]> {
    return this.em.fork().getRepository(Job).runTimeHistogram(bounds);
  }

  /**
   * The job's view if the viewer may see it (404 otherwise), lean and from memory when it can
   * be: what clients poll and what an event stream starts from.
   */
  async visibleView(id: string, viewer: JobViewer): Promise<JobView> {
    const job = await this.views.read(id, () => this.em.getRepository(Job).findView(id));
    if (!job || !mayView(job, viewer)) {
      throw notVisible(id);
    }
    return job;
  }

  async get(id: string, viewer: JobViewer): Promise<JobDto> {
    const job = await this.visibleView(id, viewer);
    const dto = toJobDto(job);
    if (job.state === JobState.Queued) {
      // Why it waits is computed now: caps, devices and slots change by the second.
      const waiting = await this.scheduler.explain(job);
      dto.reason = job.reason ? `${waiting} (${job.reason})` : waiting;
    }
    return dto;
  }

  async list(principal: UserPrincipal, query: ListJobsQuery): Promise<JobPageDto> {
    const where: Record<string, unknown> = {};
    if (!hasRole(principal, 'admin')) {
      where.owner = principal.userId;
    }
    if (query.status) {
      where.state = query.status;
    }
    if (query.service) {
      where.service = query.service;
    }
    if (query.batchId) {
      where.batchId = query.batchId;
    }
    if (query.since) {
      where.createdAt = { $gte: query.since };
    }
    if (query.cursor) {
      const { at, id } = decodeCursor(query.cursor);
      where.$or = [{ createdAt: { $lt: at } }, { createdAt: at, id: { $lt: id } }];
    }
    const jobs = await this.em.find(Job, where, {
      orderBy: { createdAt: 'desc', id: 'desc' },
      limit: query.limit + 1,
    });
    const page = jobs.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      items: page.map(toJobDto),
      nextCursor:
        jobs.length > query.limit && last ? encodeCursor(last.createdAt, last.id) : undefined,
    };
  }

  async cancel(id: string, viewer: JobViewer): Promise<JobDto> {
    const job = await this.visible(id, viewer);
    const moved = await this.cancelOne(job, viewer);
    if (!moved) {
      throw new ProblemException(
        HttpStatus.CONFLICT,
        `The job is ${job.state}; only queued or running jobs can be cancelled.`,
      );
    }
    return toJobDto(moved);
  }

  /** Cancels a live job wherever it is: its queue entry, its process, its agent. */
  private async cancelOne(job: Job, viewer: JobViewer): Promise<Job | undefined> {
    const by = viewer.principal?.userId ?? 'ticket';
    const moved = await this.em.getRepository(Job).transition(job.id, {
      to: JobState.Cancelled,
      reason: `cancelled by ${viewer.principal?.kind === 'user' ? (viewer.principal.email ?? by) : 'ticket holder'}`,
      actor: by,
      actorUserId: viewer.principal?.userId,
      patch: { finishedAt: new Date() },
    });
    if (!moved) {
      return undefined;
    }
    const device = moved.job.device
      ? await this.em.fork().findOne(Device, moved.job.device.id)
      : undefined;
    await this.stopAttempt(moved.job, device ?? undefined, moved.previous, by, 'cancel');
    await this.bus.publish({
      type: 'state',
      jobId: job.id,
      state: JobState.Cancelled,
      reason: moved.job.reason,
      at: new Date().toISOString(),
    });
    this.scheduler.kick();
    return moved.job;
  }

  /**
   * Puts a job back in the queue through the lifecycle's guarded move (an operator's
   * `jobs:requeue`: a device that will not come back, a cluster that lost the job), then stops
   * the attempt that held it, as cancelling does; the scheduler places it again. Undefined when
   * the job is in none of `request.from`, or moved on meanwhile.
   */
  async requeue(id: string, request: RequeueRequest): Promise<Job | undefined> {
    const held = await this.em.fork().findOne(Job, id, { populate: ['device'] });
    if (!held || !request.from.includes(held.state)) {
      return undefined;
    }
    const moved = await this.em.getRepository(Job).transition(id, {
      to: JobState.Queued,
      from: [held.state],
      // The attempt stopped below is the one read above: one placed elsewhere since is not ours.
      onDevice: held.device?.id,
      actor: request.actor,
      actorUserId: request.actorUserId,
      reason: request.reason,
      patch: {
        device: null,
        progress: 0,
        progressMessage: null,
        notBefore: null,
        finishedAt: null,
        externalId: null,
      },
    });
    if (!moved) {
      return undefined;
    }
    const by = request.actorUserId ?? 'system';
    await this.stopAttempt(held, held.device, moved.previous, by, 'requeue');
    await this.bus.publish({
      type: 'state',
      jobId: id,
      state: JobState.Queued,
      reason: request.reason,
      at: new Date().toISOString(),
    });
    // Only once the old attempt was told to stop: the new one must not take its cancel.
    this.scheduler.kick();
    return moved.job;
  }

  /**
   * Ends the attempt of a job that just left it (cancelled or requeued): its placement leaves
   * the device's Bull queue, a cluster job nobody polls is cancelled by a worker (a polled one
   * ends with its poll), an agent gets a stop, and the worker running the program ends it (told
   * over Redis; the cancel names the placement, so a later attempt of the job runs on; a run
   * that misses the message learns it from PostgreSQL, see watchCancel). An agent is sent a stop for a job it has not claimed on cancel only (a session's devices
   * expect one): a requeued job may come back to the same agent, and the stop would end it.
   * Redis being away holds the answer for REDIS_WAIT_MS at most: Bull's own commands wait for
   * it (a cluster cancel is queued once it is back), and a stale queue entry is skipped anyway.
   */
  private async stopAttempt(
    attempt: Pick<Job, 'id' | 'assignment' | 'externalId'>,
    device: Device | undefined,
    previous: JobState,
    by: string,
    why: 'cancel' | 'requeue',
  ): Promise<void> {
    const jobId = attempt.id;
    if (device && (previous === JobState.Assigned || previous === JobState.Running)) {
      if (device.runner === 'agent') {
        if (previous === JobState.Running || why === 'cancel') {
          await this.commands.issue(device.id, { type: 'stop', args: { jobId } }, by);
        }
      } else if (device.runner === 'ssh' && !device.ssh?.statusCommand && attempt.externalId) {
        const cancel = { jobId, deviceId: device.id, externalId: attempt.externalId };
        await withTimeout(this.queues.cancelOnCluster(cancel), REDIS_WAIT_MS, 'Redis').catch(
          (err: Error) => this.logger.warn(`job ${jobId}: cluster cancel: ${err.message}`),
        );
      } else {
        const run = { jobId, deviceId: device.id, assignment: attempt.assignment };
        await withTimeout(this.queues.remove(run), REDIS_WAIT_MS, 'Redis').catch(() => {});
      }
    }
    await this.bus.publish({ type: 'cancel', jobId, assignment: attempt.assignment });
  }

  /** Cancels every live job of a batch session; each device gets a stop. */
  async cancelBatch(batchId: string, principal: UserPrincipal): Promise<JobPageDto> {
    const where: Record<string, unknown> = { batchId };
    if (!hasRole(principal, 'admin')) {
      where.owner = principal.userId;
    }
    const jobs = await this.em
      .fork()
      .find(Job, where, { orderBy: { createdAt: 'asc', id: 'asc' } });
    if (jobs.length === 0) {
      throw new NotFoundException(`There is no batch ${batchId}, or you may not see it.`);
    }
    const items: Job[] = [];
    for (const job of jobs) {
      items.push(isFinal(job.state) ? job : ((await this.cancelOne(job, { principal })) ?? job));
    }
    return { items: items.map(toJobDto) };
  }

  /** Admins reorder waiting work: higher priority runs first among one user's jobs. */
  async setPriority(id: string, priority: number, principal: UserPrincipal, origin: RequestOrigin) {
    const job = await this.visible(id, { principal });
    await this.em.fork().transactional(async (em) => {
      await em.nativeUpdate(Job, { id }, { priority, updatedAt: new Date() });
      this.audit.record(
        {
          actor: principal,
          action: 'job.priority',
          targetType: 'job',
          targetId: id,
          origin,
          details: { from: job.priority, to: priority },
        },
        em,
      );
    });
    jobsChanged(id);
    this.scheduler.kick();
    return this.get(id, { principal });
  }

  async retry(id: string, viewer: JobViewer): Promise<JobDto> {
    const job = await this.visible(id, viewer);
    const manifest = this.catalog.manifest(job.service);
    if (!manifest) {
      throw new ConflictException(`Service ${job.service} no longer exists.`);
    }
    const moved = await this.em.getRepository(Job).transition(job.id, {
      to: JobState.Queued,
      from: [JobState.Failed],
      reason: 'retried',
      actor: viewer.principal?.userId ?? 'ticket',
      actorUserId: viewer.principal?.userId,
      patch: {
        progress: 0,
        progressMessage: null,
        finishedAt: null,
        device: null,
        notBefore: null,
      },
    });
    if (!moved) {
      throw new ProblemException(
        HttpStatus.CONFLICT,
        `The job is ${job.state}; only failed jobs can be retried.`,
      );
    }
    this.scheduler.kick();
    await this.bus.publish({
      type: 'state',
      jobId: job.id,
      state: JobState.Queued,
      reason: 'retried',
      at: new Date().toISOString(),
    });
    return toJobDto(moved.job);
  }

  /** Removes the job's files and marks it expired; a live job must be cancelled first. */
  async remove(id: string, viewer: JobViewer): Promise<void> {
    const job = await this.visible(id, viewer);
    if (!isFinal(job.state)) {
      throw new ProblemException(
        HttpStatus.CONFLICT,
        `The job is ${job.state}; cancel it before deleting it.`,
      );
    }
    if (job.state !== JobState.Expired) {
      await this.em.getRepository(Job).transition(job.id, {
        to: JobState.Expired,
        reason: 'deleted',
        actor: viewer.principal?.userId ?? 'ticket',
        actorUserId: viewer.principal?.userId,
      });
    }
    await this.storage.delete(`jobs/${job.id}/`);
  }
}
