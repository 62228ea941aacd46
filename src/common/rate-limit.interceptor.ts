import {
  CallHandler,
  ExecutionContext,
  HttpStatus,
  Injectable,
  NestInterceptor,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { InjectThrottlerStorage, type ThrottlerStorage } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import type { Observable } from 'rxjs';
import { AppConfig } from '../config';
import type { RequestWithPrincipal } from './auth.decorators';
import { ProblemException } from './problem';
import {
  RATE_LIMIT_NAME,
  RATE_LIMIT_WINDOW_MS,
  rateLimitBucket,
  SKIP_RATE_LIMIT,
} from './rate-limit';

/**
 * The API-wide limits (RATE_LIMIT_USER_PER_MINUTE, RATE_LIMIT_IP_PER_MINUTE), counted in Redis.
 *
 * An interceptor, not a guard: Nest runs interceptors after every guard, so by now the global
 * guard has resolved a user and a route's own guard a device (agent routes), and each caller
 * counts under its own id. Requests a guard refuses (bad credentials) never get here.
 */
@Injectable()
export class RateLimitInterceptor implements NestInterceptor {
  constructor(
    private readonly config: AppConfig,
    private readonly reflector: Reflector,
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
  ) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    if (context.getType() === 'http' && !this.skipped(context)) {
      const http = context.switchToHttp();
      const req = http.getRequest<Request & RequestWithPrincipal>();
      const bucket = rateLimitBucket(req.user, req.ip, this.config.http);
      if (bucket) {
        const counted = await this.storage.increment(
          bucket.key,
          RATE_LIMIT_WINDOW_MS,
          bucket.limit,
          RATE_LIMIT_WINDOW_MS,
          RATE_LIMIT_NAME,
        );
        if (counted.isBlocked) {
          const wait = Math.max(1, counted.timeToBlockExpire);
          http.getResponse<Response>().setHeader('Retry-After', String(wait));
          throw new ProblemException(
            HttpStatus.TOO_MANY_REQUESTS,
            `Too many requests: ${bucket.who} may make ${bucket.limit} per minute. ` +
              `Retry after ${wait} s.`,
            { type: 'urn:labgate:problem:rate-limited' },
          );
        }
      }
    }
    return next.handle();
  }

  private skipped(context: ExecutionContext): boolean {
    return (
      this.reflector.getAllAndOverride<boolean>(SKIP_RATE_LIMIT, [
        context.getHandler(),
        context.getClass(),
      ]) === true
    );
  }
}
