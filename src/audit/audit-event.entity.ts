import { randomUUID } from 'node:crypto';
import { Entity, Index, PrimaryKey, Property } from '@mikro-orm/core';
import { AuditEventRepository } from './audit-event.repository';

/** One line of the append-only audit log: who did what to which object, when, from where. */
@Entity({ tableName: 'audit_event', repository: () => AuditEventRepository })
@Index({ properties: ['at', 'id'] })
@Index({ properties: ['targetType', 'targetId'] })
export class AuditEvent {
  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  at: Date = new Date();

  /** The user or device that acted; null for the system itself. */
  @Property({ type: 'uuid', nullable: true })
  actorId?: string;

  @Property({ type: 'text' })
  actorKind!: 'user' | 'device' | 'system' | 'ticket';

  @Property({ type: 'text' })
  action!: string;

  @Property({ type: 'text' })
  targetType!: string;

  @Property({ type: 'text', nullable: true })
  targetId?: string;

  @Property({ type: 'text', nullable: true })
  ip?: string;

  @Property({ type: 'text', nullable: true })
  requestId?: string;

  @Property({ type: 'json', nullable: true })
  details?: Record<string, unknown>;
}
