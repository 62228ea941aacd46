import { Injectable } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import type { RequestOrigin } from '../common/auth.decorators';
import type { Principal } from '../common/principal';
import { AuditEvent } from './audit-event.entity';

export interface AuditEntry {
  actor?: Principal;
  action: string;
  targetType: string;
  targetId?: string;
  origin?: RequestOrigin;
  details?: Record<string, unknown>;
}

/** Writes audit rows; pass the EntityManager of the transaction the audited change is in. */
@Injectable()
export class AuditService {
  constructor(private readonly em: EntityManager) {}

  record(entry: AuditEntry, em: EntityManager = this.em): AuditEvent {
    const event = em.create(AuditEvent, {
      at: new Date(),
      actorId: entry.actor?.kind === 'user' ? entry.actor.userId : undefined,
      actorKind: entry.actor?.kind ?? 'system',
      action: entry.action,
      targetType: entry.targetType,
      targetId: entry.targetId,
      ip: entry.origin?.ip,
      requestId: entry.origin?.requestId,
      details: entry.details,
    });
    em.persist(event);
    return event;
  }
}
