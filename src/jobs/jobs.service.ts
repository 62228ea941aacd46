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
import { User } from '../auth/user.entity';
import { CatalogService } from '../catalog/catalog.service';
import { validateFieldValues } from '../catalog/input-validation';
import type { RequestOrigin } from '../common/auth.decorators';
import { AppConfig } from '../config';
import { decodeCursor, encodeCursor } from '../common/pagination';
import { hasRole, type Principal, type UserPrincipal } from '../common/principal';
import { ProblemException, validationProblem } from '../common/problem';
import { BlobStorage } from '../storage/blob-storage';
import type { JobDto, JobPageDto, ListJobsQuery, SubmittedJobDto } from './dto/job.dto';
import { JobEvent } from './job-event.entity';
import { JobEventsBus } from './job-events.bus';
import { JobQueue } from './job-queue';
import { isFinal, JobState } from './job-state';
import { Job } from './job.entity';
import { toJobDto, toSubmittedDto } from './job.mapper';
import { parseMultipartSubmission, ParsedSubmission } from './submission-parser';

export const TICKET_PREFIX = 'lgt_';
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

/** Who may see a job: its owner, an admin, or whoever holds its ticket. */
export interface JobViewer {
  principal?: Principal;
  ticket?: string;
}

@Injectable()
export class JobsService {
  private readonly logger = new Logger(JobsService.name);

  constructor(
    private readonly em: EntityManager,
    private readonly catalog: CatalogService,
    private readonly storage: BlobStorage,
    private readonly queue: JobQueue,
    private readonly bus: JobEventsBus,
    private readonly audit: AuditService,
    private readonly config: AppConfig,
  ) {}

  async submit(
    owner: UserPrincipal,
    req: Request,
    origin: RequestOrigin,
    idempotencyKey?: string,
  ): Promise<SubmittedJobDto> {
    if (idempotencyKey !== undefined && !/^[\x21-\x7e]{1,200}$/.test(idempotencyKey)) {
      throw validationProblem([
        {
          field: 'Idempotency-Key',
          message: 'Idempotency-Key must be 1-200 printable ASCII characters',
        },
      ]);
    }
    const jobId = randomUUID();
    const resolveService = (key: string) => this.catalog.requireUsable(key, owner);
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
      const body = (req.body ?? {}) as { service?: unknown; inputs?: unknown };
      if (typeof body.service !== 'string') {
        throw validationProblem([{ field: 'service', message: 'service is required' }]);
      }
      const inputs = body.inputs ?? {};
      if (typeof inputs !== 'object' || Array.isArray(inputs)) {
        throw validationProblem([{ field: 'inputs', message: 'inputs must be an object' }]);
      }
      parsed = {
        manifest: await resolveService(body.service),
        fields: inputs as Record<string, unknown>,
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
      return await this.create(owner, jobId, parsed, origin, idempotencyKey);
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
    return toSubmittedDto(previous);
  }

  private async create(
    owner: UserPrincipal,
    jobId: string,
    parsed: ParsedSubmission,
    origin: RequestOrigin,
    idempotencyKey?: string,
  ): Promise<SubmittedJobDto> {
    const { manifest, fields, files } = parsed;
    const { values, errors } = validateFieldValues(
      manifest,
      fields,
      files.map((f) => f.input),
    );
    if (errors.length > 0) {
      throw validationProblem(errors);
    }
    const fileValues = Object.fromEntries(files.map((f) => [f.input, f.path]));
    const token = newSecret(TICKET_PREFIX);
    let job: Job;
    try {
      job = await this.em.fork().transactional((em) => {
        const created = em.create(Job, {
          id: jobId,
          service: manifest.key,
          serviceVersion: manifest.version,
          owner: em.getReference(User, owner.userId),
          state: JobState.Queued,
          inputs: { ...values, ...fileValues },
          inputFiles: files,
          progress: 0,
          attempts: 0,
          tokenHash: hashSecret(token),
          idempotencyKey,
          requestHash: idempotencyKey ? requestHash(parsed) : undefined,
          createdAt: new Date(),
          updatedAt: new Date(),
        });
        em.create(JobEvent, { jobId, state: JobState.Queued, actor: owner.userId, at: new Date() });
        this.audit.record(
          {
            actor: owner,
            action: 'job.submit',
            targetType: 'job',
            targetId: jobId,
            origin,
            details: { service: manifest.key },
          },
          em,
        );
        return created;
      });
    } catch (err) {
      // The same key submitted twice at once: the loser answers like a replay.
      if (err instanceof UniqueConstraintViolationException && idempotencyKey) {
        const replay = await this.replayed(owner, idempotencyKey, parsed);
        if (replay) {
          return replay;
        }
      }
      throw err;
    }
    try {
      await this.queue.enqueue(job.id, manifest);
    } catch (err) {
      // PostgreSQL has the job; the worker's reconciler enqueues it once Redis is back.
      this.logger.warn(`job ${job.id} stored but not enqueued: ${(err as Error).message}`);
    }
    return toSubmittedDto(job, token);
  }

  /** The job if the viewer may see it; 404 otherwise (no hint that it exists). */
  async visible(id: string, viewer: JobViewer): Promise<Job> {
    const job = await this.em.findOne(Job, id, { populate: ['tokenHash'] });
    const allowed =
      job &&
      ((viewer.principal?.kind === 'user' && job.owner.id === viewer.principal.userId) ||
        hasRole(viewer.principal, 'admin') ||
        (viewer.ticket !== undefined && hashSecret(viewer.ticket) === job.tokenHash));
    if (!job || !allowed) {
      throw new NotFoundException(`There is no job ${id}, or you may not see it.`);
    }
    return job;
  }

  async get(id: string, viewer: JobViewer): Promise<JobDto> {
    return toJobDto(await this.visible(id, viewer));
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
    const by = viewer.principal?.userId ?? 'ticket';
    const moved = await this.em.getRepository(Job).transition(job.id, {
      to: JobState.Cancelled,
      reason: `cancelled by ${viewer.principal?.kind === 'user' ? (viewer.principal.email ?? by) : 'ticket holder'}`,
      actor: by,
      actorUserId: viewer.principal?.userId,
      patch: { finishedAt: new Date() },
    });
    if (!moved) {
      throw new ProblemException(
        HttpStatus.CONFLICT,
        `The job is ${job.state}; only queued or running jobs can be cancelled.`,
      );
    }
    await this.queue.remove(job.id);
    await this.bus.publish({ type: 'cancel', jobId: job.id });
    await this.bus.publish({
      type: 'state',
      jobId: job.id,
      state: JobState.Cancelled,
      reason: moved.job.reason,
      at: new Date().toISOString(),
    });
    return toJobDto(moved.job);
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
      patch: { progress: 0, progressMessage: undefined, finishedAt: undefined },
    });
    if (!moved) {
      throw new ProblemException(
        HttpStatus.CONFLICT,
        `The job is ${job.state}; only failed jobs can be retried.`,
      );
    }
    await this.queue.enqueue(job.id, manifest);
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
