import { HttpStatus, Injectable } from '@nestjs/common';
import { InjectThrottlerStorage, type ThrottlerStorage } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { AppConfig } from '../config';
import type { Principal } from './principal';
import { ProblemException } from './problem';
import { RATE_LIMIT_NAME, RATE_LIMIT_WINDOW_MS, rateLimitBucket } from './rate-limit';

/**
 * The API-wide limits (RATE_LIMIT_USER_PER_MINUTE, RATE_LIMIT_IP_PER_MINUTE), counted in Redis
 * so that every API process shares them. Called by the guards that know who the caller is:
 * the global access guard (users, and callers without credentials) and the device token guard
 * (agents). A guard rather than an interceptor: an interceptor on every route wraps every
 * handler in an RxJS pipeline, which cost more CPU than the rest of a simple request.
 */
@Injectable()
export class RateLimiter {
  constructor(
    private readonly config: AppConfig,
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
  ) {}

  /** Counts the request; a 429 problem with Retry-After once the caller is over its limit. */
  async count(req: Request, res: Response, principal: Principal | undefined): Promise<void> {
    const bucket = rateLimitBucket(principal, req.ip, this.config.http);
    if (!bucket) {
      return;
    }
    const counted = await this.storage.increment(
      bucket.key,
      RATE_LIMIT_WINDOW_MS,
      bucket.limit,
      RATE_LIMIT_WINDOW_MS,
      RATE_LIMIT_NAME,
    );
    if (counted.isBlocked) {
      const wait = Math.max(1, counted.timeToBlockExpire);
      res.setHeader('Retry-After', String(wait));
      throw new ProblemException(
        HttpStatus.TOO_MANY_REQUESTS,
        `Too many requests: ${bucket.who} may make ${bucket.limit} per minute. ` +
          `Retry after ${wait} s.`,
        { type: 'urn:labgate:problem:rate-limited' },
      );
    }
  }
}
