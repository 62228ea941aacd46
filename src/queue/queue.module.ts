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
            // A job whose worker died is noticed after this long and re-run (once; the job's
            // own retry policy decides beyond that).
            settings: { stalledInterval: cfg.stalledJobCheckMs, maxStalledCount: 1 },
          }),
        }),
        BullModule.registerQueue({ name: QueueName.System }),
      ],
      providers: [SystemQueue, ...(config.runsWorker ? [SystemProcessor] : [])],
      exports: [BullModule, SystemQueue],
    };
  }
}
