import { Entity, Index, PrimaryKey, Property } from '@mikro-orm/core';
import { JobState } from './job-state';

export interface JobEventData {
  ownerId: string;
  service: string;
  serviceVersion?: string;
  deviceId?: string;
  batchId?: string;
  /** `succeeded` only. */
  metrics?: Record<string, unknown>;
  /** `succeeded` only: the storage key of the outputs tar.gz, its size and SHA-256. */
  resultKey?: string;
  resultSize?: number;
  resultSha256?: string;
  startedAt?: string;
  finishedAt?: string;
}

/**
 * Every state change of a job, written in the transaction that makes it. Replayed to event
 * streams, and read by notifications (the outbox) without reaching into the jobs module.
 */
@Entity({ tableName: 'job_event' })
@Index({ properties: ['jobId', 'id'] })
export class JobEvent {
  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @Property({ type: 'uuid' })
  jobId!: string;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  at: Date = new Date();

  @Property({ type: 'text' })
  state!: JobState;

  @Property({ type: 'text', nullable: true })
  previousState?: JobState;

  @Property({ type: 'text', nullable: true })
  reason?: string;

  /** Who made the change: a user id, `worker:<host:pid>`, or `system`. */
  @Property({ type: 'text' })
  actor!: string;

  /**
   * What readers of the outbox need without reaching into the jobs module: the job's owner and
   * service on every event; on `succeeded` also its device, metrics, result key and times.
   */
  @Property({ type: 'json', nullable: true })
  data?: JobEventData;
}
