import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { withTimeout } from '../common/with-timeout';
import { SystemQueue } from '../queue/system-queue.service';

@Injectable()
export class RedisHealthIndicator {
  constructor(
    private readonly indicator: HealthIndicatorService,
    private readonly system: SystemQueue,
  ) {}

  async check(key: string, timeoutMs = 1500) {
    const indicator = this.indicator.check(key);
    try {
      await withTimeout(this.system.checkRedis(), timeoutMs, 'Redis');
      const policy = await withTimeout(this.system.evictionPolicy(), timeoutMs, 'Redis').catch(
        () => undefined,
      );
      // An evicting Redis drops queued work under memory pressure; say so, but stay ready.
      const warning =
        policy && policy !== 'noeviction'
          ? `maxmemory-policy is ${policy}; Bull needs noeviction or queued jobs may be lost`
          : undefined;
      return indicator.up({ maxmemoryPolicy: policy, ...(warning ? { warning } : {}) });
    } catch (err) {
      return indicator.down({ message: (err as Error).message });
    }
  }
}
