import { Entity, PrimaryKey, Property } from '@mikro-orm/core';

/** A user's choice for one event on one channel; without a row, the default applies. */
@Entity({ tableName: 'notification_preference' })
export class NotificationPreference {
  @PrimaryKey({ type: 'uuid' })
  userId!: string;

  @PrimaryKey({ type: 'text' })
  event!: string;

  @PrimaryKey({ type: 'text' })
  channel!: string;

  @Property({ type: 'boolean' })
  enabled!: boolean;
}
