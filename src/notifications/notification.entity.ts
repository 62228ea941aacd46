import { randomUUID } from 'node:crypto';
import { Entity, Index, PrimaryKey, Property } from '@mikro-orm/core';

/** An in-app notification: what `GET /me/notifications` lists. */
@Entity({ tableName: 'notification' })
@Index({ properties: ['userId', 'readAt', 'createdAt'] })
export class Notification {
  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Property({ type: 'uuid' })
  userId!: string;

  /** The delivery it comes from: delivering twice inserts nothing twice. */
  @Property({ type: 'uuid', unique: true })
  deliveryId!: string;

  @Property({ type: 'text' })
  event!: string;

  @Property({ type: 'text' })
  title!: string;

  @Property({ type: 'text' })
  body!: string;

  @Property({ type: 'text', nullable: true })
  link?: string;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  readAt?: Date;
}
