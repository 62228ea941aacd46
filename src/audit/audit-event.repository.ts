import type { FilterQuery } from '@mikro-orm/core';
import { EntityRepository } from '@mikro-orm/postgresql';
// Type-only: the entity module imports this one, so a value import would be a cycle.
import type { AuditEvent } from './audit-event.entity';
import type { AuditedAction, AuditTarget } from './audited-actions';

export interface AuditFilter {
  actorId?: string;
  action?: AuditedAction;
  /** A family of actions, with its dot: `device.`. */
  actionPrefix?: string;
  targetType?: AuditTarget;
  targetId?: string;
  /** At or after. */
  from?: Date;
  /** Before. */
  to?: Date;
  /** Keyset: events older than this (at, id). */
  before?: { at: Date; id: string };
  limit: number;
}

export class AuditEventRepository extends EntityRepository<AuditEvent> {
  /** One page, newest first; (at, id) is unique, so pages neither skip nor repeat a row. */
  page(filter: AuditFilter): Promise<AuditEvent[]> {
    const where: FilterQuery<AuditEvent>[] = [];
    if (filter.actorId) {
      where.push({ actorId: filter.actorId });
    }
    if (filter.action) {
      where.push({ action: filter.action });
    }
    if (filter.actionPrefix) {
      // Prefixes are declared names (never user text), so no LIKE wildcard can slip in.
      where.push({ action: { $like: `${filter.actionPrefix}%` } });
    }
    if (filter.targetType) {
      where.push({ targetType: filter.targetType });
    }
    if (filter.targetId) {
      where.push({ targetId: filter.targetId });
    }
    if (filter.from) {
      where.push({ at: { $gte: filter.from } });
    }
    if (filter.to) {
      where.push({ at: { $lt: filter.to } });
    }
    if (filter.before) {
      const { at, id } = filter.before;
      where.push({ $or: [{ at: { $lt: at } }, { at, id: { $lt: id } }] });
    }
    return this.find({ $and: where }, { orderBy: { at: 'desc', id: 'desc' }, limit: filter.limit });
  }
}
