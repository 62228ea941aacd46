import { Injectable } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { EntitlementRule } from '../auth/entitlement-rule.entity';
import { effectiveRoles } from '../auth/roles';
import { User } from '../auth/user.entity';
import { AppConfig } from '../config';
import type { NotificationEvent } from './channels/events';
import { NotificationPreference } from './preference.entity';
import { Webhook } from './webhook.entity';
import type { Channel } from './delivery.entity';

/** Mail by default only for what a person acts on; in-app and webhooks for everything. */
const MAIL_BY_DEFAULT: readonly NotificationEvent[] = [
  'job.succeeded',
  'job.failed',
  'device.down',
  'device.up',
  'result.claimed',
  'claim.decided',
];

export function enabledByDefault(event: NotificationEvent, channel: Channel): boolean {
  return channel !== 'email' || MAIL_BY_DEFAULT.includes(event);
}

export interface Target {
  userId: string;
  channel: Channel;
  email?: string;
  webhookId?: string;
}

/** Who hears of an event, on which channels, after their preferences. */
@Injectable()
export class Recipients {
  constructor(
    private readonly em: EntityManager,
    private readonly config: AppConfig,
  ) {}

  /** Operators and admins: whoever controls devices hears of them going DOWN and up. */
  async operators(em: EntityManager = this.em): Promise<string[]> {
    const users = await em.find(User, { blocked: false }, { fields: ['id', 'entitlements'] });
    const rules = await em.find(EntitlementRule, {}, { fields: ['entitlement', 'match', 'role'] });
    const ids: string[] = [];
    for (const user of users) {
      const roles = effectiveRoles(user.entitlements, {
        adminEntitlements: this.config.auth.adminEntitlements,
        operatorEntitlements: this.config.auth.operatorEntitlements,
        rules,
      });
      if (roles.includes('operator') || roles.includes('admin')) {
        ids.push(user.id);
      }
    }
    return ids;
  }

  async targets(userIds: string[], event: NotificationEvent, em: EntityManager): Promise<Target[]> {
    if (userIds.length === 0) {
      return [];
    }
    const users = await em.find(User, { id: { $in: userIds }, blocked: false });
    const prefs = await em.find(NotificationPreference, { userId: { $in: userIds }, event });
    const hooks = await em.find(Webhook, { userId: { $in: userIds } });
    const wants = (userId: string, channel: Channel) =>
      prefs.find((p) => p.userId === userId && p.channel === channel)?.enabled ??
      enabledByDefault(event, channel);
    const targets: Target[] = [];
    for (const user of users) {
      if (wants(user.id, 'inapp')) {
        targets.push({ userId: user.id, channel: 'inapp' });
      }
      if (user.email && wants(user.id, 'email')) {
        targets.push({ userId: user.id, channel: 'email', email: user.email });
      }
      if (wants(user.id, 'webhook')) {
        for (const hook of hooks.filter((h) => h.userId === user.id)) {
          if (hook.events.includes(event) || hook.events.includes('*')) {
            targets.push({ userId: user.id, channel: 'webhook', webhookId: hook.id });
          }
        }
      }
    }
    return targets;
  }
}
