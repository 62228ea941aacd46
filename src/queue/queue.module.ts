import { DynamicModule, Global, Module } from '@nestjs/common';
import { BullModule } from '@nestjs/bull';
import { AppConfig } from '../config';
import { QueueName } from './queue.constants';
import { SystemProcessor } from './system.processor';
import { SystemQueue } from './system-queue.service';

/**
 * Bull on Redis. Producers exist in every role; processors only where this process works
 * (ROLE=worker or all), so an API-only process never takes jobs.
 */
@Global()
@Module({})
export class QueueModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: QueueModule,
      imports: [
        BullModule.forRootAsync({
          inject: [AppConfig],
          useFactory: (cfg: AppConfig) => ({
            url: cfg.redis.url,
            prefix: cfg.redis.prefix,
            // A worker holds a lock on its job, renewed at half its duration; once a dead
            // worker's lock lapses, the next stalled check re-runs the job (once; the job's own
            // retry policy decides beyond that). So a lost job runs again after 1-2 periods.
            settings: {
              lockDuration: cfg.stalledJobCheckMs,
              lockRenewTime: cfg.stalledJobCheckMs / 2,
              stalledInterval: cfg.stalledJobCheckMs,
              maxStalledCount: 1,
            },
          }),
        }),
        BullModule.registerQueue({ name: QueueName.System }),
      ],
      providers: [SystemQueue, ...(config.runsWorker ? [SystemProcessor] : [])],
      exports: [BullModule, SystemQueue],
    };
  }
}
