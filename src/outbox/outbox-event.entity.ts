import { Entity, PrimaryKey, Property } from '@mikro-orm/core';

/**
 * A domain event that is not a job's (device DOWN/up, result claimed, claim decided), written
 * in the transaction of the change it reports. Notifications read it past a cursor, so a
 * crash between the commit and a delivery loses nothing. Job changes have their own outbox,
 * `job_event`.
 */
@Entity({ tableName: 'outbox_event' })
export class OutboxEvent {
  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  at: Date = new Date();

  /** `device.down`, `device.up`, `result.claimed`, `claim.decided`. */
  @Property({ type: 'text' })
  type!: string;

  @Property({ type: 'text' })
  subjectType!: string;

  @Property({ type: 'text' })
  subjectId!: string;

  /** What a reader needs without reaching into the writer: names, owners, decisions. */
  @Property({ type: 'json' })
  data: Record<string, unknown> = {};
}
