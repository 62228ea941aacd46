import { DynamicModule, Module } from '@nestjs/common';
import { BullModule } from '@nestjs/bull';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { CatalogModule } from '../catalog/catalog.module';
import { AppConfig } from '../config';
import { QueueName } from '../queue/queue.constants';
import { JobEvent } from './job-event.entity';
import { JobEventsBus } from './job-events.bus';
import { JobExecutionService } from './job-execution.service';
import { JobFilesService } from './job-files.service';
import { JobQueue } from './job-queue';
import { JobStreamService } from './job-stream.service';
import { Job } from './job.entity';
import { JobsController } from './jobs.controller';
import { JobsService } from './jobs.service';
import { JobsWorker } from './jobs.worker';
import { RetentionService } from './retention.service';

@Module({
  imports: [
    MikroOrmModule.forFeature([Job, JobEvent]),
    BullModule.registerQueue({ name: QueueName.Jobs }),
    CatalogModule,
  ],
})
export class JobsModule {
  /** The worker parts only where this process works (ROLE=worker or all). */
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: JobsModule,
      controllers: [JobsController],
      providers: [
        JobsService,
        JobQueue,
        JobEventsBus,
        JobFilesService,
        JobStreamService,
        ...(config.runsWorker ? [JobExecutionService, RetentionService, JobsWorker] : []),
      ],
      exports: [JobsService, JobQueue],
    };
  }
}
