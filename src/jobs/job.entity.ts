import { randomUUID } from 'node:crypto';
import {
  Entity,
  EntityRepositoryType,
  Enum,
  Index,
  ManyToOne,
  PrimaryKey,
  Property,
  Unique,
} from '@mikro-orm/core';
import { User } from '../auth/user.entity';
import { Device } from '../devices/device.entity';
import type { InputValues } from '../catalog/manifest';
import { JobState } from './job-state';
import { JobRepository } from './job.repository';

export interface StoredInputFile {
  input: string;
  filename: string;
  /** Relative to the job's work dir, as `inputs.json` names it. */
  path: string;
  key: string;
  size: number;
  sha256: string;
}

/** A job: PostgreSQL holds its whole truth; Bull only carries the work to a worker. */
@Entity({ tableName: 'job', repository: () => JobRepository })
@Index({ properties: ['owner', 'createdAt', 'id'] })
@Index({ properties: ['state', 'createdAt'] })
@Index({ properties: ['device', 'state'] })
@Unique({ properties: ['owner', 'idempotencyKey'] })
export class Job {
  [EntityRepositoryType]?: JobRepository;

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Property({ type: 'text' })
  service!: string;

  @Property({ type: 'text' })
  serviceVersion!: string;

  @ManyToOne(() => User, { deleteRule: 'cascade' })
  owner!: User;

  @Enum({ items: () => JobState })
  state: JobState = JobState.Queued;

  /** Why it is in its state: "timed out after 60 s", "cancelled by …", "waiting for a slot". */
  @Property({ type: 'text', nullable: true })
  reason?: string;

  @Property({ type: 'json' })
  inputs: InputValues = {};

  @Property({ type: 'json' })
  inputFiles: StoredInputFile[] = [];

  /** SHA-256 of the ticket token, which alone grants access to this job. */
  @Property({ type: 'text', lazy: true })
  tokenHash!: string;

  @Property({ type: 'text', nullable: true })
  idempotencyKey?: string;

  @Property({ type: 'text', nullable: true, lazy: true })
  requestHash?: string;

  @Property({ type: 'integer' })
  progress: number = 0;

  @Property({ type: 'text', nullable: true })
  progressMessage?: string;

  /** Runs started (a retry or a lost worker starts another). */
  @Property({ type: 'integer' })
  attempts: number = 0;

  @Property({ type: 'text', nullable: true })
  worker?: string;

  /** The device it is placed on while assigned or running (and, after, where it ran). */
  @ManyToOne(() => Device, { nullable: true, deleteRule: 'set null' })
  device?: Device;

  /** A job of a batch session runs on exactly this device. */
  @Property({ type: 'uuid', nullable: true })
  targetDeviceId?: string;

  /** Jobs submitted together for several devices (`targets`) share a batch id. */
  @Index()
  @Property({ type: 'uuid', nullable: true })
  batchId?: string;

  /** Higher runs first among one user's waiting jobs. */
  @Property({ type: 'integer' })
  priority: number = 0;

  /** Counts placements, so that a placement that was taken back is recognised as stale. */
  @Property({ type: 'integer' })
  assignment: number = 0;

  /** When it was last placed on a device: fair share serves the least recently served user. */
  @Index()
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  assignedAt?: Date;

  /** A job waiting out its retry backoff is not placed before this time. */
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  notBefore?: Date;

  /** The id a cluster gave the job (SSH runner), for status polls and cancel. */
  @Property({ type: 'text', nullable: true })
  externalId?: string;

  @Property({ type: 'json', nullable: true })
  metrics?: Record<string, unknown>;

  @Property({ type: 'bigint', nullable: true })
  resultSize?: number;

  @Property({ type: 'text', nullable: true })
  resultSha256?: string;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  updatedAt: Date = new Date();

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  startedAt?: Date;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  finishedAt?: Date;
}
