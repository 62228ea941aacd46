import { Entity, EntityRepositoryType, PrimaryKey, Property } from '@mikro-orm/core';
import { ServiceStateRepository } from './service-state.repository';

/**
 * What admins changed about a service at runtime; the manifest itself is never stored. A
 * service without a row is enabled.
 */
@Entity({ tableName: 'service_state', repository: () => ServiceStateRepository })
export class ServiceState {
  [EntityRepositoryType]?: ServiceStateRepository;

  /** The manifest's key. */
  @PrimaryKey({ type: 'text' })
  key!: string;

  @Property({ type: 'boolean' })
  enabled: boolean = true;

  /** Overrides the manifest's `priority` for new jobs (null: the manifest's). */
  @Property({ type: 'integer', nullable: true })
  priority?: number | null;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  updatedAt: Date = new Date();

  /** The admin who changed it last. */
  @Property({ type: 'uuid', nullable: true })
  updatedBy?: string;
}
