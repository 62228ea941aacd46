import {
  ExecutionContext,
  ForbiddenException,
  Injectable,
  Optional,
  UnauthorizedException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard, AuthModuleOptions } from '@nestjs/passport';
import type { Request, Response } from 'express';
import {
  IS_DEVICE_ROUTE,
  IS_PUBLIC,
  OPTIONAL_AUTH,
  REQUIRED_ROLES,
} from '../common/auth.decorators';
import type { Principal, Role } from '../common/principal';
import { SKIP_RATE_LIMIT } from '../common/rate-limit';
import { RateLimiter } from '../common/rate-limiter';
import { SESSION_COOKIE } from './sessions.service';

const READ_METHODS = ['GET', 'HEAD', 'OPTIONS'];

const targetsOf = (context: ExecutionContext) => [context.getHandler(), context.getClass()];

/** Whether the request carries anything the authenticator reads (bearer or session cookie). */
function carriesCredentials(req: Request): boolean {
  return (
    req.headers.authorization !== undefined ||
    (req.headers.cookie?.includes(`${SESSION_COOKIE}=`) ?? false)
  );
}

/**
 * The one global guard. Deny by default: a route is open only with `@Public()`; otherwise the
 * caller must authenticate (passport, strategy of this app), hold a role named by `@Roles()`,
 * and, with a personal access token, a scope that allows the method. Then the request counts
 * against the caller's rate limit (per user, or per IP without credentials).
 */
@Injectable()
export class AccessGuard extends AuthGuard() {
  constructor(
    private readonly reflector: Reflector,
    private readonly rateLimiter: RateLimiter,
    // Carries this app's strategy name (AuthModule.forRoot).
    @Optional() options?: AuthModuleOptions,
  ) {
    super(options);
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = targetsOf(context);
    const http = context.switchToHttp();
    const req = http.getRequest<Request & { user?: Principal }>();
    const res = http.getResponse<Response>();
    // Agent routes take device tokens only: their own guard (devices module) checks and
    // counts them.
    if (this.reflector.getAllAndOverride<boolean>(IS_DEVICE_ROUTE, targets)) {
      return true;
    }
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets)) {
      if (!this.reflector.getAllAndOverride<boolean>(SKIP_RATE_LIMIT, targets)) {
        await this.rateLimiter.count(req, res, undefined);
      }
      return true;
    }
    if (!carriesCredentials(req)) {
      // Nothing for passport to read: the same answer it would give, without its per-request
      // machinery (ticket polls arrive like this, many per second).
      this.handleRequest(undefined, false, undefined, context);
      await this.rateLimiter.count(req, res, undefined);
      return true; // @OptionalAuth(): the route decides.
    }
    await super.canActivate(context);
    const principal = req.user;
    if (!principal) {
      await this.rateLimiter.count(req, res, undefined);
      return true; // @OptionalAuth() and no credentials: the route decides.
    }
    if (principal.kind !== 'user') {
      throw new ForbiddenException('Device tokens are accepted on /api/v1/agent routes only.');
    }
    if (principal.via === 'pat') {
      const scopes = principal.scopes ?? [];
      if (!READ_METHODS.includes(req.method) && !scopes.includes('write')) {
        throw new ForbiddenException('This personal access token has no "write" scope.');
      }
    }
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(REQUIRED_ROLES, targets);
    if (roles?.length && !roles.some((role) => principal.roles.includes(role))) {
      throw new ForbiddenException(`This needs the ${roles.join(' or ')} role.`);
    }
    await this.rateLimiter.count(req, res, principal);
    return true;
  }

  override handleRequest<TUser = Principal>(
    err: unknown,
    user: TUser | false,
    _info: unknown,
    context: ExecutionContext,
  ): TUser {
    const optional = this.reflector.getAllAndOverride<boolean>(OPTIONAL_AUTH, targetsOf(context));
    if (err || (!user && !optional)) {
      context
        .switchToHttp()
        .getResponse<Response>()
        .setHeader('WWW-Authenticate', 'Bearer realm="labgate"');
    }
    if (err) {
      throw err instanceof Error ? err : new UnauthorizedException('Authentication failed.');
    }
    if (!user && optional) {
      return undefined as TUser;
    }
    if (!user) {
      throw new UnauthorizedException(
        'Sign in first: a session cookie (GET /api/v1/auth/login) or Authorization: Bearer <token>.',
      );
    }
    return user;
  }
}
