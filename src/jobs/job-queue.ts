import { Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bull';
import type { Queue } from 'bull';
import { QueueName } from '../queue/queue.constants';

/** The shared jobs queue: housekeeping (retention). Runs go to device queues. */
@Injectable()
export class JobQueue {
  constructor(@InjectQueue(QueueName.Jobs) readonly queue: Queue) {}
}
