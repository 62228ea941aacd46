import { randomUUID } from 'node:crypto';
import { Entity, Enum, Index, PrimaryKey, Property } from '@mikro-orm/core';

export const CHANNELS = ['email', 'webhook', 'inapp'] as const;
export type Channel = (typeof CHANNELS)[number];

export const DELIVERY_STATES = ['pending', 'sent', 'failed'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

/**
 * One notification to one recipient on one channel. Its key (event occurrence + channel +
 * target) is unique, so reading the outbox twice creates nothing twice, and a delivery that
 * was sent is never sent again.
 */
@Entity({ tableName: 'notification_delivery' })
@Index({ properties: ['state', 'createdAt'] })
@Index({ properties: ['webhookId', 'createdAt'] })
export class NotificationDelivery {
  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Property({ type: 'text', unique: true })
  key!: string;

  @Property({ type: 'text' })
  event!: string;

  @Enum({ items: () => [...CHANNELS] })
  channel!: Channel;

  @Property({ type: 'uuid' })
  userId!: string;

  /** The webhook of a webhook delivery. */
  @Property({ type: 'uuid', nullable: true })
  webhookId?: string;

  /** The NotificationMessage (event, subject, data, links). */
  @Property({ type: 'json' })
  message!: Record<string, unknown>;

  @Enum({ items: () => [...DELIVERY_STATES] })
  state: DeliveryState = 'pending';

  @Property({ type: 'integer' })
  attempts: number = 0;

  @Property({ type: 'text', nullable: true })
  lastError?: string;

  /** The receiver's HTTP status of the last webhook attempt. */
  @Property({ type: 'integer', nullable: true })
  lastStatus?: number;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  sentAt?: Date;
}
