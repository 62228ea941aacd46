import { Entity, PrimaryKey, Property } from '@mikro-orm/core';

/**
 * How far a reader of the `job_event` outbox has got: every event with an id at or below
 * `position` has been handled. One row per reader (`name`).
 */
@Entity({ tableName: 'result_feed_cursor' })
export class ResultFeedCursor {
  @PrimaryKey({ type: 'text' })
  name!: string;

  @Property({ type: 'bigint' })
  position: string = '0';

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  updatedAt: Date = new Date();
}
