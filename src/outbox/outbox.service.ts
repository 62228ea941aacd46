import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { OutboxEvent } from './outbox-event.entity';

export interface OutboxEntry {
  type: 'device.down' | 'device.up' | 'result.claimed' | 'claim.decided';
  subjectType: 'device' | 'result' | 'claim';
  subjectId: string;
  data: Record<string, unknown>;
}

/** Writes outbox rows; pass the EntityManager of the transaction that makes the change. */
@Injectable()
export class Outbox {
  record(em: EntityManager, entry: OutboxEntry): OutboxEvent {
    const event = em.create(OutboxEvent, { ...entry, at: new Date() });
    em.persist(event);
    return event;
  }
}
