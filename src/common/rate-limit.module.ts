import { Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import { AppConfig } from '../config';
import { RateLimiter } from './rate-limiter';
import { RedisThrottlerStorage } from './redis-throttler-storage';

/**
 * Rate limits, counted in Redis across API processes: the API-wide per-user and per-IP limits
 * (RateLimiter, which the guards call once they know the caller) and the stricter `@Throttle()` limits that routes such as
 * login ask for with `ThrottlerGuard` (the throttler's `default`, per IP and route).
 */
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        throttlers: [{ ttl: 60_000, limit: 100 }],
        storage: new RedisThrottlerStorage(config.redis.url!, config.redis.prefix),
        errorMessage: (_context, limit) =>
          `Too many attempts: at most ${limit.limit} per ${Math.round(limit.ttl / 1000)} s ` +
          `here. Retry after ${limit.timeToBlockExpire} s.`,
      }),
    }),
  ],
  providers: [RateLimiter],
  exports: [RateLimiter],
})
export class RateLimitModule {}
