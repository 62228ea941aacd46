import { Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bull';
import { HealthIndicatorService } from '@nestjs/terminus';
import type { Queue } from 'bull';
import { withTimeout } from '../common/with-timeout';
import { QueueName } from '../queue/queue.constants';
import { SystemQueue } from '../queue/system-queue.service';
import { evictionWarning, readEvictionSettings } from './redis-eviction';

@Injectable()
export class RedisHealthIndicator {
  constructor(
    private readonly indicator: HealthIndicatorService,
    private readonly system: SystemQueue,
    // Bull's own connection: the Redis the queues live in is the one whose settings matter.
    @InjectQueue(QueueName.System) private readonly queue: Queue,
  ) {}

  async check(key: string, timeoutMs = 1500) {
    const indicator = this.indicator.check(key);
    try {
      await withTimeout(this.system.checkRedis(), timeoutMs, 'Redis');
      const settings = await withTimeout(
        readEvictionSettings(this.queue.client),
        timeoutMs,
        'Redis',
      ).catch(() => undefined);
      // An evicting Redis drops queued work under memory pressure; say so, but stay ready.
      const warning = evictionWarning(settings);
      return indicator.up({
        maxmemoryPolicy: settings?.policy,
        maxmemory: settings?.maxmemory,
        ...(warning ? { warning } : {}),
      });
    } catch (err) {
      return indicator.down({ message: (err as Error).message });
    }
  }
}
