import { Entity, PrimaryKey, Property } from '@mikro-orm/core';

/** How far the dispatcher has read an outbox table (`job_event`, `outbox_event`). */
@Entity({ tableName: 'notification_cursor' })
export class NotificationCursor {
  @PrimaryKey({ type: 'text' })
  name!: string;

  @Property({ type: 'bigint' })
  position: string = '0';
}
