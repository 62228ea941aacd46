import { randomBytes } from 'node:crypto';
import { HttpStatus, Injectable, NotFoundException } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { AuditService } from '../audit/audit.service';
import type { RequestOrigin } from '../common/auth.decorators';
import { ProblemException, validationProblem } from '../common/problem';
import type { UserPrincipal } from '../common/principal';
import { AppConfig } from '../config';
import { NOTIFICATION_EVENTS } from './channels/events';
import { checkWebhookUrl } from './channels/webhook-sender';
import { CHANNELS, NotificationDelivery } from './delivery.entity';
import type {
  CreatedWebhookDto,
  DeliveryDto,
  NotificationPageDto,
  PreferenceDto,
  WebhookDto,
} from './dto/notification.dto';
import { Notification } from './notification.entity';
import { NotificationPreference } from './preference.entity';
import { enabledByDefault } from './recipients';
import { Webhook } from './webhook.entity';

const MAX_WEBHOOKS = 20;

function cursorOf(n: Notification): string {
  return Buffer.from(JSON.stringify([n.readAt ? 1 : 0, n.createdAt.toISOString(), n.id])).toString(
    'base64url',
  );
}

function parseCursor(cursor: string): { read: number; at: Date; id: string } {
  try {
    const [read, at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as [
      number,
      string,
      string,
    ];
    const date = new Date(at);
    if ((read !== 0 && read !== 1) || typeof id !== 'string' || Number.isNaN(date.getTime())) {
      throw new Error('bad cursor');
    }
    return { read, at: date, id };
  } catch {
    throw new ProblemException(HttpStatus.BAD_REQUEST, 'cursor is not one this API gave out.');
  }
}

/** What a signed-in user reads and sets of their notifications: in-app, preferences, hooks. */
@Injectable()
export class NotificationsService {
  constructor(
    private readonly em: EntityManager,
    private readonly config: AppConfig,
    private readonly audit: AuditService,
  ) {}

  async list(user: UserPrincipal, limit: number, cursor?: string): Promise<NotificationPageDto> {
    const em = this.em.fork();
    const params: unknown[] = [user.userId];
    let after = '';
    if (cursor) {
      const c = parseCursor(cursor);
      // Unread (0) before read (1), then newest first.
      after = `and (
        (case when read_at is null then 0 else 1 end) > ?
        or ((case when read_at is null then 0 else 1 end) = ? and (created_at < ? or (created_at = ? and id < ?))))`;
      params.push(c.read, c.read, c.at, c.at, c.id);
    }
    const rows = await em.getConnection().execute<Array<{ id: string }>>(
      `select id from notification where user_id = ? ${after}
        order by (case when read_at is null then 0 else 1 end), created_at desc, id desc
        limit ?`,
      [...params, limit + 1],
    );
    const found = await em.find(Notification, { id: { $in: rows.map((r) => r.id) } });
    const byId = new Map(found.map((n) => [n.id, n]));
    const ordered = rows.map((r) => byId.get(r.id)!).filter(Boolean);
    const page = ordered.slice(0, limit);
    const unread = await em.count(Notification, { userId: user.userId, readAt: null });
    return {
      items: page.map((n) => ({
        id: n.id,
        event: n.event,
        title: n.title,
        body: n.body,
        link: n.link ?? undefined,
        createdAt: n.createdAt,
        readAt: n.readAt ?? undefined,
      })),
      unread,
      nextCursor: ordered.length > limit ? cursorOf(page[page.length - 1]) : undefined,
    };
  }

  async markRead(user: UserPrincipal, ids?: string[]): Promise<number> {
    const where: Record<string, unknown> = { userId: user.userId, readAt: null };
    if (ids) {
      where.id = { $in: ids };
    }
    return this.em.fork().nativeUpdate(Notification, where, { readAt: new Date() });
  }

  async preferences(user: UserPrincipal): Promise<PreferenceDto[]> {
    const rows = await this.em.fork().find(NotificationPreference, { userId: user.userId });
    return NOTIFICATION_EVENTS.flatMap((event) =>
      CHANNELS.map((channel) => ({
        event,
        channel,
        enabled:
          rows.find((r) => r.event === event && r.channel === channel)?.enabled ??
          enabledByDefault(event, channel),
      })),
    );
  }

  async setPreferences(
    user: UserPrincipal,
    preferences: PreferenceDto[],
  ): Promise<PreferenceDto[]> {
    const seen = new Set<string>();
    const errors = preferences.flatMap((p, i) => {
      const key = `${p.event}/${p.channel}`;
      const duplicate = seen.has(key);
      seen.add(key);
      return duplicate ? [{ field: `preferences[${i}]`, message: `${key} is given twice` }] : [];
    });
    if (errors.length > 0) {
      throw validationProblem(errors);
    }
    await this.em.fork().transactional(async (em) => {
      for (const p of preferences) {
        await em.upsert(NotificationPreference, {
          userId: user.userId,
          event: p.event,
          channel: p.channel,
          enabled: p.enabled,
        });
      }
    });
    return this.preferences(user);
  }

  async createWebhook(
    user: UserPrincipal,
    url: string,
    events: string[],
    origin: RequestOrigin,
  ): Promise<CreatedWebhookDto> {
    const refused = await checkWebhookUrl(url, this.config.webhookAllowPrivate);
    if (refused) {
      throw validationProblem([{ field: 'url', message: refused }]);
    }
    const secret = `lgw_${randomBytes(32).toString('base64url')}`;
    const hook = await this.em.fork().transactional(async (em) => {
      if ((await em.count(Webhook, { userId: user.userId })) >= MAX_WEBHOOKS) {
        throw new ProblemException(
          HttpStatus.CONFLICT,
          `You have ${MAX_WEBHOOKS} webhooks, the most one user may; delete one first.`,
        );
      }
      const created = em.create(Webhook, {
        userId: user.userId,
        url,
        events,
        secret,
        createdAt: new Date(),
      });
      this.audit.record(
        {
          actor: user,
          action: 'webhook.create',
          targetType: 'webhook',
          targetId: created.id,
          origin,
          details: { url, events },
        },
        em,
      );
      return created;
    });
    return { ...toWebhookDto(hook), secret };
  }

  async webhooks(user: UserPrincipal): Promise<WebhookDto[]> {
    const hooks = await this.em
      .fork()
      .find(Webhook, { userId: user.userId }, { orderBy: { createdAt: 'asc' } });
    return hooks.map(toWebhookDto);
  }

  private async ownWebhook(user: UserPrincipal, id: string, em = this.em.fork()) {
    const hook = await em.findOne(Webhook, { id, userId: user.userId });
    if (!hook) {
      throw new NotFoundException(`You have no webhook ${id}.`);
    }
    return hook;
  }

  async deleteWebhook(user: UserPrincipal, id: string, origin: RequestOrigin): Promise<void> {
    await this.em.fork().transactional(async (em) => {
      const hook = await this.ownWebhook(user, id, em);
      em.remove(hook);
      this.audit.record(
        { actor: user, action: 'webhook.delete', targetType: 'webhook', targetId: id, origin },
        em,
      );
    });
  }

  async deliveries(user: UserPrincipal, id: string): Promise<DeliveryDto[]> {
    await this.ownWebhook(user, id);
    const rows = await this.em
      .fork()
      .find(NotificationDelivery, { webhookId: id }, { orderBy: { createdAt: 'desc' }, limit: 50 });
    return rows.map((d) => ({
      id: d.id,
      event: d.event,
      state: d.state,
      attempts: d.attempts,
      lastStatus: d.lastStatus ?? undefined,
      lastError: d.lastError ?? undefined,
      createdAt: d.createdAt,
      sentAt: d.sentAt ?? undefined,
    }));
  }
}

function toWebhookDto(hook: Webhook): WebhookDto {
  return { id: hook.id, url: hook.url, events: hook.events, createdAt: hook.createdAt };
}
