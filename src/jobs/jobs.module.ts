import { DynamicModule, Module } from '@nestjs/common';
import { BullModule } from '@nestjs/bull';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { CatalogModule } from '../catalog/catalog.module';
import { DevicesModule } from '../devices/devices.module';
import { AppConfig } from '../config';
import { QueueName } from '../queue/queue.constants';
import { JobEvent } from './job-event.entity';
import { JobEventsBus } from './job-events.bus';
import { JobExecutionService } from './job-execution.service';
import { JobFilesService } from './job-files.service';
import { JobQueue } from './job-queue';
import { JobStreamService } from './job-stream.service';
import { JobViewCache } from './job-view-cache';
import { Job } from './job.entity';
import { JobsController } from './jobs.controller';
import { JobsService } from './jobs.service';
import { JobsWorker } from './jobs.worker';
import { AgentJobsController } from './agent-jobs.controller';
import { AgentJobsService } from './agent-jobs.service';
import { JobOutcomes } from './job-outcomes.service';
import { DeviceQueues } from './scheduling/device-queues';
import { DeviceWatch } from './scheduling/device-watch';
import { JobScheduler } from './scheduling/job-scheduler';
import { RetentionService } from './retention.service';

@Module({
  imports: [
    MikroOrmModule.forFeature([Job, JobEvent]),
    BullModule.registerQueue({ name: QueueName.Jobs }),
    CatalogModule,
    DevicesModule,
  ],
})
export class JobsModule {
  /** The worker parts only where this process works (ROLE=worker or all). */
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: JobsModule,
      controllers: [JobsController, AgentJobsController],
      providers: [
        JobsService,
        JobQueue,
        JobEventsBus,
        JobFilesService,
        JobStreamService,
        JobViewCache,
        DeviceQueues,
        JobScheduler,
        JobOutcomes,
        DeviceWatch,
        AgentJobsService,
        ...(config.runsWorker ? [JobExecutionService, RetentionService, JobsWorker] : []),
      ],
      exports: [JobsService, JobQueue, JobScheduler, DeviceQueues],
    };
  }
}
