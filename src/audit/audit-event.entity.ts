import { randomUUID } from 'node:crypto';
import { Entity, EntityRepositoryType, Index, PrimaryKey, Property } from '@mikro-orm/core';
import { AuditEventRepository } from './audit-event.repository';
import type { AuditedAction, AuditTarget } from './audited-actions';

/**
 * One line of the append-only audit log: who did what to which object, when, from where.
 * PostgreSQL refuses UPDATE, DELETE and TRUNCATE on the table (a trigger), so not even a bug
 * here or a retention sweep can rewrite history.
 */
@Entity({ tableName: 'audit_event', repository: () => AuditEventRepository })
@Index({ properties: ['at', 'id'] })
@Index({ properties: ['targetType', 'targetId'] })
// What one person did: the admin API's `actor` filter, newest first.
@Index({ properties: ['actorId', 'at', 'id'] })
export class AuditEvent {
  [EntityRepositoryType]?: AuditEventRepository;

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  at: Date = new Date();

  /** The user or device that acted (see actorKind); null for labgate itself. */
  @Property({ type: 'uuid', nullable: true })
  actorId?: string;

  @Property({ type: 'text' })
  actorKind!: 'user' | 'device' | 'system' | 'ticket';

  /** One of the declared actions (audited-actions.ts). */
  @Property({ type: 'text' })
  action!: AuditedAction;

  @Property({ type: 'text' })
  targetType!: AuditTarget;

  @Property({ type: 'text', nullable: true })
  targetId?: string;

  @Property({ type: 'text', nullable: true })
  ip?: string;

  @Property({ type: 'text', nullable: true })
  requestId?: string;

  @Property({ type: 'json', nullable: true })
  details?: Record<string, unknown>;
}
