import { HttpStatus, Injectable, NotFoundException, StreamableFile } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { LockMode } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import type { Request, Response } from 'express';
import { AuditService } from '../audit/audit.service';
import type { ActionOn } from '../audit/audited-actions';
import { User } from '../auth/user.entity';
import { CatalogService } from '../catalog/catalog.service';
import { validateMetrics } from '../catalog/input-validation';
import type { RequestOrigin } from '../common/auth.decorators';
import type { Principal, UserPrincipal } from '../common/principal';
import { quoteInput } from '../common/caller-input';
import { ProblemException, validationProblem } from '../common/problem';
import { BlobStorage } from '../storage/blob-storage';
import type { ListResultsQuery, ResultDto, ResultPageDto, SubmitResultDto } from './dto/result.dto';
import { parseMetricsFilter, parseSort, QuerySyntaxError } from './metrics-filter';
import { extractArtifact } from './result-archive';
import { canManage, canSee, readerOf } from './result-access';
import { decodeResultCursor, encodeResultCursor } from './result-cursor';
import { toResultDto } from './result.mapper';
import type { ResultListSpec, ResultReader } from './result.repository';
import { Result, type ResultVisibility } from './result.entity';

/** The result catalogue: listing and search, reading, direct submission, tags, visibility. */
@Injectable()
export class ResultsService {
  constructor(
    private readonly em: EntityManager,
    private readonly catalog: CatalogService,
    private readonly storage: BlobStorage,
    private readonly audit: AuditService,
  ) {}

  async list(principal: Principal | undefined, query: ListResultsQuery): Promise<ResultPageDto> {
    const reader = readerOf(principal);
    const spec = this.listSpec(reader, query);
    const rows = await this.em.getRepository(Result).list({ ...spec, limit: query.limit + 1 });
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((row) => toResultDto(row.result)),
      nextCursor:
        rows.length > query.limit && last
          ? encodeResultCursor({ sort: query.sort, value: last.sortValue, id: last.result.id })
          : undefined,
    };
  }

  /** The query as the repository takes it; every mistake in it is a 400 naming the parameter. */
  private listSpec(reader: ResultReader, query: ListResultsQuery): Omit<ResultListSpec, 'limit'> {
    let ownerId: string | undefined;
    if (query.owner !== undefined) {
      if (!reader.userId) {
        throw validationProblem([{ field: 'owner', message: 'owner needs you to be signed in' }]);
      }
      ownerId = query.owner.toLowerCase() === 'me' ? reader.userId : query.owner.toLowerCase();
      if (ownerId !== reader.userId && !reader.admin) {
        throw new ProblemException(
          HttpStatus.FORBIDDEN,
          "Only admins list another user's results; use owner=me for yours.",
        );
      }
    }
    const errors: Array<{ field: string; message: string }> = [];
    const parse = <T>(field: string, work: () => T): T | undefined => {
      try {
        return work();
      } catch (err) {
        if (err instanceof QuerySyntaxError) {
          errors.push({ field, message: err.message });
          return undefined;
        }
        throw err;
      }
    };
    const filters = (query.filter ?? []).map((text, i) =>
      parse(query.filter!.length > 1 ? `filter[${i}]` : 'filter', () => parseMetricsFilter(text)),
    );
    const sort = parse('sort', () => parseSort(query.sort));
    if (errors.length > 0 || !sort) {
      throw validationProblem(errors);
    }
    const after = query.cursor ? decodeResultCursor(query.cursor, query.sort) : undefined;
    return {
      reader,
      service: query.service,
      deviceId: query.device?.toLowerCase(),
      ownerId,
      tags: query.tag,
      createdSince: query.createdSince,
      createdBefore: query.createdBefore,
      executedSince: query.executedSince,
      executedBefore: query.executedBefore,
      status: query.status,
      filters: filters.filter((f) => f !== undefined),
      sort,
      after: after && { value: after.value, id: after.id },
    };
  }

  async get(id: string, principal: Principal | undefined): Promise<ResultDto> {
    return toResultDto(await this.visible(this.em, id, readerOf(principal)));
  }

  /** One file of the outputs archive, streamed out of it; immutable, so with an ETag. */
  async artifact(
    id: string,
    name: string,
    principal: Principal | undefined,
    req: Request,
    res: Response,
  ): Promise<StreamableFile | undefined> {
    const result = await this.visible(this.em, id, readerOf(principal));
    const artifact = result.artifacts.find((a) => a.name === name);
    if (!artifact || !result.archiveKey) {
      throw new NotFoundException(`Result ${id} has no file ${quoteInput(name)}.`);
    }
    if (!(await this.storage.stat(result.archiveKey))) {
      throw new ProblemException(HttpStatus.GONE, 'The outputs archive is missing from storage.');
    }
    const etag = `"${createHash('sha256')
      .update(`${result.archiveSha256 ?? result.archiveKey}\0${name}`)
      .digest('hex')
      .slice(0, 32)}"`;
    res.setHeader('ETag', etag);
    res.setHeader('Cache-Control', 'private, no-cache');
    if (req.headers['if-none-match'] === etag) {
      res.status(304);
      return undefined;
    }
    const filename = name.slice(name.lastIndexOf('/') + 1);
    return new StreamableFile(extractArtifact(this.storage.read(result.archiveKey), name), {
      type: artifact.mediaType,
      length: artifact.size,
      disposition: `attachment; filename="${filename.replace(/["\\\r\n]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(filename)}`,
    });
  }

  /** A run done elsewhere (a benchmark), validated against the service's result schema. */
  async submit(
    principal: UserPrincipal,
    dto: SubmitResultDto,
    origin: RequestOrigin,
  ): Promise<ResultDto> {
    const manifest = this.catalog.manifest(dto.service);
    if (!manifest || !this.catalog.isEntitled(manifest, principal)) {
      throw validationProblem([
        { field: 'service', message: `there is no service ${JSON.stringify(dto.service)}` },
      ]);
    }
    const errors = validateMetrics(manifest, dto.metrics);
    if (errors.length > 0) {
      throw validationProblem(errors);
    }
    const result = await this.em.fork().transactional((em) => {
      const now = new Date();
      const created = em.create(Result, {
        service: manifest.key,
        serviceVersion: manifest.version,
        owner: em.getReference(User, principal.userId),
        metrics: dto.metrics,
        artifacts: [],
        tags: dto.tags ?? [],
        visibility: dto.visibility ?? 'private',
        status: 'published',
        createdAt: now,
        executedAt: new Date(dto.executedAt),
        updatedAt: now,
      });
      this.audit.record(
        {
          actor: principal,
          action: 'result.submit',
          targetType: 'result',
          targetId: created.id,
          origin,
          details: { service: manifest.key, tags: created.tags, visibility: created.visibility },
        },
        em,
      );
      return Promise.resolve(created);
    });
    return toResultDto(result);
  }

  setTags(id: string, tags: string[], principal: UserPrincipal, origin: RequestOrigin) {
    return this.change(id, principal, origin, 'result.tags', (result) => {
      const before = result.tags;
      result.tags = tags;
      return { before, after: tags };
    });
  }

  setVisibility(
    id: string,
    visibility: ResultVisibility,
    principal: UserPrincipal,
    origin: RequestOrigin,
  ) {
    return this.change(id, principal, origin, 'result.visibility', (result) => {
      const before = result.visibility;
      result.visibility = visibility;
      return { before, after: visibility };
    });
  }

  /** A change by the owner or an admin, with its audit row, in one transaction. */
  private async change(
    id: string,
    principal: UserPrincipal,
    origin: RequestOrigin,
    action: ActionOn<'result'>,
    apply: (result: Result) => Record<string, unknown>,
  ): Promise<ResultDto> {
    const result = await this.em.fork().transactional(async (em) => {
      const reader = readerOf(principal);
      const result = await this.visible(em, id, reader, LockMode.PESSIMISTIC_WRITE);
      if (!canManage(result, reader)) {
        throw new ProblemException(
          HttpStatus.FORBIDDEN,
          'Only the owner of a result and admins change it.',
        );
      }
      const details = apply(result);
      result.updatedAt = new Date();
      this.audit.record(
        { actor: principal, action, targetType: 'result', targetId: id, origin, details },
        em,
      );
      return result;
    });
    return toResultDto(result);
  }

  /** The result if the reader may see it; 404 otherwise (no hint that it exists). */
  async visible(
    em: EntityManager,
    id: string,
    reader: ResultReader,
    lockMode?: LockMode,
  ): Promise<Result> {
    const result = await em.findOne(Result, id, lockMode ? { lockMode } : {});
    if (!result || !canSee(result, reader)) {
      throw new NotFoundException(`There is no result ${id}, or you may not see it.`);
    }
    return result;
  }
}
