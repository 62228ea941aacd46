import { Logger, OnModuleDestroy } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import Redis from 'ioredis';
import { withTimeout } from './with-timeout';

type StorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

const ANSWER_WITHIN_MS = 1_000;
const WARN_EVERY_MS = 30_000;

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
    this.counters = new ThrottlerStorageRedisService(this.redis);
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<StorageRecord> {
    try {
      return await withTimeout(
        this.counters.increment(key, ttl, limit, blockDuration, throttlerName),
        ANSWER_WITHIN_MS,
        'Redis (rate limits)',
      );
    } catch (err) {
      this.warn(`request let through uncounted: ${(err as Error).message}`);
      return { totalHits: 0, timeToExpire: 0, isBlocked: false, timeToBlockExpire: 0 };
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
