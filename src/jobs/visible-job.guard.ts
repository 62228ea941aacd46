import {
  BadRequestException,
  CanActivate,
  createParamDecorator,
  ExecutionContext,
  Injectable,
} from '@nestjs/common';
import { isUUID } from 'class-validator';
import type { Request } from 'express';
import type { UserPrincipal } from '../common/principal';
import type { JobView } from './job.mapper';
import { viewerOf } from './job-viewer.decorator';
import { JobsService } from './jobs.service';

type WithJob = Request & { user?: UserPrincipal; visibleJob?: JobView };

/**
 * Finds the job of an event stream, for its viewer, before the stream starts. With any
 * interceptor in place (the API-wide rate limit is one), Nest sends an SSE answer's 200 and
 * headers on the next tick, before an async handler has settled: a refusal from the handler
 * would reach the caller as an `error` event in a 200 stream instead of the 404 problem every
 * other job route answers. Guards run before that.
 */
@Injectable()
export class VisibleJobGuard implements CanActivate {
  constructor(private readonly jobs: JobsService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<WithJob>();
    const id = req.params.id;
    if (typeof id !== 'string' || !isUUID(id)) {
      throw new BadRequestException('Validation failed (uuid is expected)');
    }
    req.visibleJob = await this.jobs.visibleView(id, viewerOf(req));
    return true;
  }
}

/** The job `VisibleJobGuard` found. */
export const VisibleJob = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): JobView =>
    ctx.switchToHttp().getRequest<WithJob>().visibleJob!,
);
