import { Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bull';
import type { Queue } from 'bull';
import type { ServiceManifest } from '../catalog/manifest';
import { EPHEMERAL_JOB, JobName, JobOf, QueueName } from '../queue/queue.constants';

/** Puts labgate jobs on the Bull queue: the Bull job id is the job id (no double enqueue). */
@Injectable()
export class JobQueue {
  // One queue, two job names (run, retention): payloads are typed per name where they are read.
  constructor(@InjectQueue(QueueName.Jobs) readonly queue: Queue) {}

  async enqueue(jobId: string, manifest: Pick<ServiceManifest, 'retry'>): Promise<void> {
    const payload: JobOf<JobName.RunJob> = { jobId };
    await this.queue.add(JobName.RunJob, payload, {
      ...EPHEMERAL_JOB,
      jobId,
      attempts: Math.max(1, manifest.retry.attempts),
      backoff: { type: 'exponential', delay: manifest.retry.backoffSeconds * 1000 },
    });
  }

  async holds(jobId: string): Promise<boolean> {
    return (await this.queue.getJob(jobId)) !== null;
  }

  async remove(jobId: string): Promise<void> {
    const job = await this.queue.getJob(jobId);
    await job?.remove().catch(() => {}); // a job a worker holds cannot be removed; it sees the state
  }
}
