import { Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bull';
import type { Queue } from 'bull';
import { EPHEMERAL_JOB, JobName, JobOf, QueueName, ResultOf } from './queue.constants';

@Injectable()
export class SystemQueue {
  constructor(@InjectQueue(QueueName.System) private readonly queue: Queue) {}

  /** Sends a ping through Redis to whichever worker is listening and waits for its answer. */
  async ping(): Promise<ResultOf<JobName.SystemPing>> {
    const payload: JobOf<JobName.SystemPing> = { requestedAt: new Date().toISOString() };
    const job = await this.queue.add(JobName.SystemPing, payload, EPHEMERAL_JOB);
    return (await job.finished()) as ResultOf<JobName.SystemPing>;
  }

  /** Round trip to Redis, for readiness. */
  async checkRedis(): Promise<void> {
    const answer = await this.queue.client.ping();
    if (answer !== 'PONG') {
      throw new Error(`Redis answered ${String(answer)}`);
    }
  }
}
