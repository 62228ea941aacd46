import { randomUUID } from 'node:crypto';
import { Entity, Index, PrimaryKey, Property } from '@mikro-orm/core';

/**
 * A user's webhook. Its secret signs every delivery (HMAC-SHA256), so it is kept as given
 * (a hash could not sign); it is shown once, at creation.
 */
@Entity({ tableName: 'webhook' })
@Index({ properties: ['userId'] })
export class Webhook {
  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Property({ type: 'uuid' })
  userId!: string;

  @Property({ type: 'text' })
  url!: string;

  @Property({ type: 'json' })
  events: string[] = [];

  @Property({ type: 'text', lazy: true })
  secret!: string;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  createdAt: Date = new Date();
}
