import { randomUUID } from 'node:crypto';
import {
  ArrayType,
  Entity,
  EntityRepositoryType,
  Enum,
  Index,
  ManyToOne,
  PrimaryKey,
  Property,
} from '@mikro-orm/core';
import { User } from '../auth/user.entity';
import { ResultRepository } from './result.repository';

export const RESULT_VISIBILITIES = ['private', 'institution', 'public'] as const;
export type ResultVisibility = (typeof RESULT_VISIBILITIES)[number];

/**
 * Moderation: `published` is listed (as its visibility allows), `under_review` has a pending
 * claim and is hidden from all but admins and its owner, `removed` after an approved claim.
 */
export const RESULT_STATUSES = ['published', 'under_review', 'removed'] as const;
export type ResultStatus = (typeof RESULT_STATUSES)[number];

/** One file of a result's outputs archive. */
export interface Artifact {
  /** Path inside the archive, `/`-separated, without a leading `./` (`plots/a.png`). */
  name: string;
  size: number;
  mediaType: string;
}

/**
 * What a run produced, kept after the job's own files expire: its metrics (validated against
 * the service's result schema), the outputs archive and its file list, tags and visibility.
 * Jobs' results come from the outbox (ResultsFeed); others are submitted directly.
 */
@Entity({ tableName: 'result', repository: () => ResultRepository })
@Index({ properties: ['createdAt', 'id'] })
@Index({ properties: ['executedAt', 'id'] })
@Index({ properties: ['service', 'createdAt', 'id'] })
@Index({ properties: ['service', 'id'] })
@Index({ properties: ['owner', 'createdAt', 'id'] })
@Index({ properties: ['deviceId', 'createdAt', 'id'] })
// jsonb containment (metrics filters with =, array elements) and tags (@>).
@Index({
  name: 'result_metrics_gin',
  expression: 'create index "result_metrics_gin" on "result" using gin ("metrics" jsonb_path_ops)',
})
@Index({
  name: 'result_tags_gin',
  expression: 'create index "result_tags_gin" on "result" using gin ("tags")',
})
export class Result {
  [EntityRepositoryType]?: ResultRepository;

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  /** The job it came from; none for a directly submitted result. One result per job. */
  @Property({ type: 'uuid', nullable: true, unique: true })
  jobId?: string;

  @Property({ type: 'text' })
  service!: string;

  @Property({ type: 'text', nullable: true })
  serviceVersion?: string;

  @ManyToOne(() => User, { deleteRule: 'cascade' })
  owner!: User;

  /** Where it ran. No foreign key: a result outlives the device. */
  @Property({ type: 'uuid', nullable: true })
  deviceId?: string;

  @Property({ type: 'json' })
  metrics: Record<string, unknown> = {};

  @Property({ type: 'json' })
  artifacts: Artifact[] = [];

  /** Storage key of the outputs tar.gz (`results/<id>/outputs.tar.gz`), if it has one. */
  @Property({ type: 'text', nullable: true })
  archiveKey?: string;

  @Property({ type: 'bigint', nullable: true })
  archiveSize?: number;

  @Property({ type: 'text', nullable: true })
  archiveSha256?: string;

  @Property({ type: ArrayType, columnType: 'text[]' })
  tags: string[] = [];

  @Enum({ items: () => [...RESULT_VISIBILITIES] })
  visibility: ResultVisibility = 'private';

  @Enum({ items: () => [...RESULT_STATUSES] })
  status: ResultStatus = 'published';

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  createdAt: Date = new Date();

  /** When the run happened: the job's finish, or what a direct submission states. */
  @Property({ type: 'datetime', columnType: 'timestamptz' })
  executedAt!: Date;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  updatedAt: Date = new Date();
}
