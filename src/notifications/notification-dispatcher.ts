import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bull';
import { EntityManager } from '@mikro-orm/postgresql';
import type { Queue } from 'bull';
import { AppConfig } from '../config';
import { EPHEMERAL_JOB, JobName, JobOf, QueueName } from '../queue/queue.constants';
import type { NotificationMessage } from './channels/events';
import { fromJobEvent, fromOutbox, JobEventRow, OutboxRow } from './outbox-reader';
import { Recipients } from './recipients';

const BATCH = 200;
const READ_EVERY_MS = 1_000;
const RECONCILE_EVERY_MS = 30_000;
/** Younger pending deliveries may still be on their way into Redis. */
const RECONCILE_GRACE_MS = 10_000;
export const DELIVERY_ATTEMPTS = 6;

type Sql = <T extends object>(query: string, params?: unknown[]) => Promise<T[]>;

/**
 * Reads the outboxes (`job_event`, `outbox_event`) past a cursor and turns each event into
 * deliveries, one per recipient and channel, keyed so that reading twice adds nothing; the
 * cursor moves in the same transaction. Each delivery then goes to Bull, which sends it and
 * retries with backoff. A crash anywhere loses nothing: unread events are read again, pending
 * deliveries Redis lost are handed over again by the reconciler.
 */
@Injectable()
export class NotificationDispatcher implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(NotificationDispatcher.name);
  private timers: NodeJS.Timeout[] = [];
  private reading?: Promise<number>;

  constructor(
    private readonly em: EntityManager,
    private readonly config: AppConfig,
    private readonly recipients: Recipients,
    @InjectQueue(QueueName.Notifications) private readonly queue: Queue,
  ) {}

  onApplicationBootstrap(): void {
    this.timers = [
      setInterval(() => void this.drain().catch(() => {}), READ_EVERY_MS),
      setInterval(() => void this.reconcile(), RECONCILE_EVERY_MS),
    ];
    // A worker that died between committing deliveries and handing them to Redis left them
    // younger than the grace: look again once the grace has passed, not a whole period later.
    const afterGrace = setTimeout(() => void this.reconcile(), RECONCILE_GRACE_MS + 1_000);
    this.timers.push(afterGrace);
    this.timers.forEach((t) => t.unref());
    void this.reconcile();
  }

  onModuleDestroy(): Promise<number> | undefined {
    this.timers.forEach((t) => clearInterval(t));
    return this.reading;
  }

  /** Reads both outboxes until they are exhausted; returns the deliveries created. */
  drain(): Promise<number> {
    this.reading ??= this.readAll().finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async readAll(): Promise<number> {
    let created = 0;
    try {
      for (;;) {
        const jobs = await this.read('job_event');
        const others = await this.read('outbox_event');
        if (jobs.read + others.read === 0) {
          return created;
        }
        created += jobs.created + others.created;
      }
    } catch (err) {
      this.logger.warn(`notification outbox not read: ${(err as Error).message}`);
      return created;
    }
  }

  private async read(table: 'job_event' | 'outbox_event') {
    const ids = await this.em.fork().transactional(async (em) => {
      const sql: Sql = (query, params = []) =>
        em.getConnection().execute(query, params, 'all', em.getTransactionContext());
      await sql(
        `insert into notification_cursor (name, position) values (?, 0) on conflict do nothing`,
        [table],
      );
      const [cursor] = await sql<{ position: string }>(
        `select position from notification_cursor where name = ? for update`,
        [table],
      );
      const rows = await sql<JobEventRow & OutboxRow>(
        `select * from ${table} where id > ? order by id limit ?`,
        [cursor.position, BATCH],
      );
      const created: string[] = [];
      for (const row of rows) {
        for (const { message, userIds } of await this.messages(table, row, em)) {
          created.push(...(await this.deliveries(sql, message, userIds, em)));
        }
      }
      if (rows.length > 0) {
        await sql(`update notification_cursor set position = ? where name = ?`, [
          rows[rows.length - 1].id,
          table,
        ]);
      }
      return { read: rows.length, created };
    });
    await this.enqueue(ids.created);
    return { read: ids.read, created: ids.created.length };
  }

  private async messages(
    table: 'job_event' | 'outbox_event',
    row: JobEventRow & OutboxRow,
    em: EntityManager,
  ): Promise<Array<{ message: NotificationMessage; userIds: string[] }>> {
    if (table === 'job_event') {
      const job = fromJobEvent(row, this.config.publicUrl);
      return job ? [{ message: job.message, userIds: job.recipients }] : [];
    }
    const other = fromOutbox(row, this.config.publicUrl);
    if (!other) {
      return [];
    }
    const userIds =
      other.audience === 'operators' ? await this.recipients.operators(em) : other.audience;
    return [{ message: other.message, userIds }];
  }

  private async deliveries(
    sql: Sql,
    message: NotificationMessage,
    userIds: string[],
    em: EntityManager,
  ): Promise<string[]> {
    const ids: string[] = [];
    for (const target of await this.recipients.targets(userIds, message.event, em)) {
      const key = `${message.key}:${target.channel}:${target.webhookId ?? target.userId}`;
      const rows = await sql<{ id: string }>(
        `insert into notification_delivery
           (id, key, event, channel, user_id, webhook_id, message, state, attempts, created_at)
         values (gen_random_uuid(), ?, ?, ?, ?, ?, ?, 'pending', 0, now())
         on conflict (key) do nothing returning id`,
        [
          key,
          message.event,
          target.channel,
          target.userId,
          target.webhookId ?? null,
          JSON.stringify(message),
        ],
      );
      ids.push(...rows.map((r) => r.id));
    }
    return ids;
  }

  private async enqueue(deliveryIds: string[]): Promise<void> {
    for (const deliveryId of deliveryIds) {
      const payload: JobOf<JobName.Deliver> = { deliveryId };
      await this.queue
        .add(JobName.Deliver, payload, {
          ...EPHEMERAL_JOB,
          jobId: deliveryId,
          attempts: DELIVERY_ATTEMPTS,
          backoff: { type: 'exponential', delay: 2_000 },
        })
        .catch((err: Error) =>
          this.logger.warn(`delivery ${deliveryId} not queued: ${err.message}`),
        );
    }
  }

  /** Pending deliveries that Redis does not hold are queued again; returns how many. */
  async reconcile(): Promise<number> {
    try {
      const pending = await this.em
        .fork()
        .getConnection()
        .execute<Array<{ id: string }>>(
          `select id from notification_delivery where state = 'pending' and created_at < ?
            order by created_at limit 5000`,
          [new Date(Date.now() - RECONCILE_GRACE_MS)],
        );
      const missing: string[] = [];
      for (const { id } of pending) {
        if (!(await this.queue.getJob(id))) {
          missing.push(id);
        }
      }
      await this.enqueue(missing);
      return missing.length;
    } catch (err) {
      this.logger.warn(`delivery reconcile failed: ${(err as Error).message}`);
      return 0;
    }
  }
}
