import { HttpStatus, Injectable } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import type { AuditEvent } from '../audit/audit-event.entity';
import { AuditService } from '../audit/audit.service';
import {
  AUDITED_ACTION_NAMES,
  AUDITED_ACTIONS,
  type AuditedAction,
} from '../audit/audited-actions';
import { User } from '../auth/user.entity';
import { decodeCursor, encodeCursor } from '../common/pagination';
import { ProblemException } from '../common/problem';
import {
  AuditedActionDto,
  AuditEventDto,
  AuditEventPageDto,
  ListAuditQuery,
} from './dto/audit.dto';

type ActingUser = Pick<User, 'id' | 'email' | 'name'>;

/** The audit log as admins read it: filtered, newest first, with the acting users named. */
@Injectable()
export class AuditLogService {
  constructor(
    private readonly em: EntityManager,
    private readonly audit: AuditService,
  ) {}

  actions(): AuditedActionDto[] {
    return AUDITED_ACTION_NAMES.map((action) => ({
      action,
      targetType: AUDITED_ACTIONS[action].target,
      description: AUDITED_ACTIONS[action].description,
    }));
  }

  async list(query: ListAuditQuery): Promise<AuditEventPageDto> {
    if (query.from && query.to && query.from >= query.to) {
      throw new ProblemException(HttpStatus.BAD_REQUEST, 'from must be before to.', {
        errors: [{ field: 'from', message: 'from must be before to' }],
      });
    }
    const family = query.action?.endsWith('.');
    const events = await this.audit.page({
      actorId: query.actor,
      action: family ? undefined : (query.action as AuditedAction | undefined),
      actionPrefix: family ? query.action : undefined,
      targetType: query.targetType,
      targetId: query.targetId,
      from: query.from,
      to: query.to,
      before: query.cursor ? decodeCursor(query.cursor) : undefined,
      limit: query.limit + 1,
    });
    const page = events.slice(0, query.limit);
    const users = await this.actingUsers(page);
    const last = page[page.length - 1];
    return {
      items: page.map((event) => toDto(event, users.get(event.actorId ?? ''))),
      nextCursor: events.length > query.limit && last ? encodeCursor(last.at, last.id) : undefined,
    };
  }

  private async actingUsers(events: AuditEvent[]): Promise<Map<string, ActingUser>> {
    const ids = [
      ...new Set(events.filter((e) => e.actorKind === 'user' && e.actorId).map((e) => e.actorId!)),
    ];
    const users = ids.length
      ? await this.em.fork().find(User, { id: { $in: ids } }, { fields: ['email', 'name'] })
      : [];
    return new Map(users.map((u) => [u.id, u]));
  }
}

function toDto(event: AuditEvent, user: ActingUser | undefined): AuditEventDto {
  return {
    id: event.id,
    at: event.at,
    actor: { kind: event.actorKind, id: event.actorId, email: user?.email, name: user?.name },
    action: event.action,
    targetType: event.targetType,
    targetId: event.targetId,
    ip: event.ip,
    requestId: event.requestId,
    details: event.details,
  };
}
