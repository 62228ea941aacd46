import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import type { UserPrincipal as Principal } from '../common/principal';
import type { JobViewer } from './jobs.service';

/** The caller of a job route: a principal (if signed in) and a ticket from header or query. */
export function viewerOf(req: Request & { user?: Principal }): JobViewer {
  const header = req.headers['x-job-token'];
  const query = req.query.token;
  const ticket =
    typeof header === 'string' ? header : typeof query === 'string' ? query : undefined;
  return { principal: req.user, ticket };
}

export const Viewer = createParamDecorator((_data: unknown, ctx: ExecutionContext): JobViewer =>
  viewerOf(ctx.switchToHttp().getRequest<Request & { user?: Principal }>()),
);
