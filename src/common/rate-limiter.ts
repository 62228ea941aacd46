import { HttpStatus, Injectable } from '@nestjs/common';
import { InjectThrottlerStorage, type ThrottlerStorage } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { AppConfig } from '../config';
import type { Principal } from './principal';
import { ProblemException } from './problem';
import { RATE_LIMIT_WINDOW_MS, rateLimitBucket, type RateLimitBucket } from './rate-limit';
import { RedisThrottlerStorage } from './redis-throttler-storage';

/** Most slots one lease takes: 1% of the limit, at least 1, at most this. */
export const MAX_LEASE = 100;

/** How many slots a process takes from Redis at once for a limit (see RateLimiter). */
export function leaseSize(limit: number): number {
  return Math.min(MAX_LEASE, Math.max(1, Math.floor(limit / 100)));
}

interface Lease {
  next: number;
  last: number;
  endsAt: number;
}

/**
 * The API-wide limits (RATE_LIMIT_USER_PER_MINUTE, RATE_LIMIT_IP_PER_MINUTE), counted in Redis
 * so that every API process shares them. Called by the guards that know who the caller is:
 * the global access guard (users, and callers without credentials) and the device token guard
 * (agents). A guard rather than an interceptor: an interceptor on every route wraps every
 * handler in an RxJS pipeline, which cost more CPU than the rest of a simple request.
 *
 * Each caller's minute is a numbered sequence of slots in Redis; a request may go when its
 * slot number is within the limit. A process takes slots in leases of 1% of the limit (at
 * least 1, at most MAX_LEASE) and hands them out itself, so a Redis round trip serves that
 * many requests. Numbers are unique across processes, so one process counts exactly; with
 * several, slots a process took and did not use count too, and a caller may be refused up to
 * (lease - 1) requests per process early. Once the window is used up, this process refuses
 * without asking Redis until the window ends.
 */
@Injectable()
export class RateLimiter {
  private readonly storage: RedisThrottlerStorage;
  private readonly leases = new Map<string, Lease>();
  private readonly leasing = new Map<string, Promise<Lease | undefined>>();

  constructor(
    private readonly config: AppConfig,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
  ) {
    if (!(storage instanceof RedisThrottlerStorage)) {
      throw new Error('RateLimiter counts in Redis: RateLimitModule provides its storage');
    }
    this.storage = storage;
  }

  /** Counts the request; a 429 problem with Retry-After once the caller is over its limit. */
  async count(req: Request, res: Response, principal: Principal | undefined): Promise<void> {
    const bucket = rateLimitBucket(principal, req.ip, this.config.http);
    if (!bucket) {
      return;
    }
    for (;;) {
      const now = Date.now();
      const lease = this.leases.get(bucket.key);
      if (lease && lease.endsAt > now) {
        if (lease.next <= lease.last && lease.next <= bucket.limit) {
          lease.next++;
          return;
        }
        if (lease.last >= bucket.limit) {
          return this.refuse(res, bucket, lease.endsAt - now);
        }
      }
      const taken = await this.take(bucket.key, bucket.limit);
      if (!taken) {
        return; // Redis did not answer: let through uncounted (the storage warned)
      }
    }
  }

  /** One lease per key at a time: requests that find none wait for the same round trip. */
  private take(key: string, limit: number): Promise<Lease | undefined> {
    let pending = this.leasing.get(key);
    if (!pending) {
      const size = leaseSize(limit);
      pending = this.storage
        .lease(key, size, RATE_LIMIT_WINDOW_MS)
        .then((slots) => {
          if (!slots) {
            return undefined;
          }
          const lease = {
            next: slots.last - size + 1,
            last: slots.last,
            endsAt: Date.now() + slots.ttlMs,
          };
          this.forgetEnded();
          this.leases.set(key, lease);
          return lease;
        })
        .finally(() => this.leasing.delete(key));
      this.leasing.set(key, pending);
    }
    return pending;
  }

  /** Keeps the map to the callers of the current minute. */
  private forgetEnded(): void {
    if (this.leases.size < 10_000) {
      return;
    }
    const now = Date.now();
    for (const [key, lease] of this.leases) {
      if (lease.endsAt <= now) {
        this.leases.delete(key);
      }
    }
  }

  private refuse(res: Response, bucket: RateLimitBucket, leftMs: number): never {
    const wait = Math.max(1, Math.ceil(leftMs / 1000));
    res.setHeader('Retry-After', String(wait));
    throw new ProblemException(
      HttpStatus.TOO_MANY_REQUESTS,
      `Too many requests: ${bucket.who} may make ${bucket.limit} per minute. ` +
        `Retry after ${wait} s.`,
      { type: 'urn:labgate:problem:rate-limited' },
    );
  }
}
