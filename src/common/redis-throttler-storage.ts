import { Logger, OnModuleDestroy } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import Redis from 'ioredis';
import { withTimeout } from './with-timeout';

type StorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

const ANSWER_WITHIN_MS = 1_000;
const WARN_EVERY_MS = 30_000;

/**
 * Takes `size` numbered slots of a fixed window at once: INCRBY, and the window's expiry set by
 * its first taker. Answers the last slot number taken and the window's remaining milliseconds.
 */
const LEASE_SCRIPT = `
local last = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {last, ttl}`;

/** Slots `last - size + 1 … last` of a window that ends in `ttlMs`. */
export interface SlotLease {
  last: number;
  ttlMs: number;
}

type LeasingRedis = Redis & {
  labgateLease(key: string, size: number, windowMs: number): Promise<[number, number]>;
};

/**
 * Rate-limit counters in Redis, under the app's key prefix, so that every API process of an
 * installation counts together and installations (and test files) sharing a Redis do not.
 *
 * When Redis does not answer, the request goes through (and a warning is logged): the limits
 * protect the API from overload, and refusing every call because a counter is unreachable
 * would be the outage they are there to prevent.
 */
export class RedisThrottlerStorage implements ThrottlerStorage, OnModuleDestroy {
  private readonly logger = new Logger('RateLimit');
  private readonly redis: Redis;
  private readonly counters: ThrottlerStorageRedisService;
  private lastWarning = 0;

  constructor(url: string, prefix: string) {
    this.redis = new Redis(url, {
      keyPrefix: `${prefix}:throttle:`,
      // No connection until a limited request arrives (workers never make one).
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      // Every request counts itself: the increments of one tick go out as one write.
      enableAutoPipelining: true,
    });
    this.redis.on('error', (err: Error) => this.warn(`Redis: ${err.message}`));
    this.redis.defineCommand('labgateLease', { numberOfKeys: 1, lua: LEASE_SCRIPT });
    this.counters = new ThrottlerStorageRedisService(this.redis);
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<StorageRecord> {
    return (
      (await this.answer(
        this.counters.increment(key, ttl, limit, blockDuration, throttlerName),
      )) ?? { totalHits: 0, timeToExpire: 0, isBlocked: false, timeToBlockExpire: 0 }
    );
  }

  /**
   * `size` slots of the window `key` (see RateLimiter); undefined when Redis does not answer
   * (the caller lets the request through, as `increment` does).
   */
  async lease(key: string, size: number, windowMs: number): Promise<SlotLease | undefined> {
    const slots = await this.answer(
      (this.redis as LeasingRedis).labgateLease(`lease:${key}`, size, windowMs),
    );
    return slots && { last: slots[0], ttlMs: slots[1] };
  }

  /** Redis's answer, or undefined (and a warning) when it gives none within ANSWER_WITHIN_MS. */
  private async answer<T>(work: Promise<T>): Promise<T | undefined> {
    try {
      return await withTimeout(work, ANSWER_WITHIN_MS, 'Redis (rate limits)');
    } catch (err) {
      this.warn(`request let through uncounted: ${(err as Error).message}`);
      return undefined;
    }
  }

  private warn(message: string): void {
    const now = Date.now();
    if (now - this.lastWarning >= WARN_EVERY_MS) {
      this.lastWarning = now;
      this.logger.warn(message);
    }
  }

  onModuleDestroy(): void {
    this.redis.disconnect();
  }
}
