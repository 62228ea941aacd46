import { Injectable } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import type { RequestOrigin } from '../common/auth.decorators';
import type { Principal } from '../common/principal';
import { AuditEvent } from './audit-event.entity';
import type { AuditFilter } from './audit-event.repository';
import type { AuditedAction, TargetOf } from './audited-actions';

interface AuditEntryFields {
  /** Who acted; none: labgate itself. */
  actor?: Principal;
  targetId?: string;
  origin?: RequestOrigin;
  details?: Record<string, unknown>;
}

/** One declared action (see audited-actions.ts) with the kind of object it names. */
export type AuditEntry = {
  [A in AuditedAction]: AuditEntryFields & { action: A; targetType: TargetOf<A> };
}[AuditedAction];

/**
 * Writes audit rows (pass the EntityManager of the transaction the audited change is in) and
 * reads them back for the admin API. Rows are never changed or deleted.
 */
@Injectable()
export class AuditService {
  constructor(private readonly em: EntityManager) {}

  record(entry: AuditEntry, em: EntityManager = this.em): AuditEvent {
    const actor = entry.actor;
    const event = em.create(AuditEvent, {
      at: new Date(),
      actorId: actor?.kind === 'user' ? actor.userId : actor?.deviceId,
      actorKind: actor?.kind ?? 'system',
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

  /** One page of the log, newest first. */
  page(filter: AuditFilter): Promise<AuditEvent[]> {
    return this.em.fork().getRepository(AuditEvent).page(filter);
  }
}
