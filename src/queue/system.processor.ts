import { hostname } from 'node:os';
import { Process, Processor } from '@nestjs/bull';
import type { Job } from 'bull';
import { JobName, JobOf, QueueName, ResultOf } from './queue.constants';

/** Answers `system.ping`: proof that a worker takes jobs from Redis and reports back. */
@Processor(QueueName.System)
export class SystemProcessor {
  @Process(JobName.SystemPing)
  ping(job: Job<JobOf<JobName.SystemPing>>): ResultOf<JobName.SystemPing> {
    return {
      pong: true,
      requestedAt: job.data.requestedAt,
      worker: `${hostname()}:${process.pid}`,
    };
  }
}
