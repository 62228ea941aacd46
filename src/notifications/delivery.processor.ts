import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bull';
import { EntityManager } from '@mikro-orm/postgresql';
import type { Job as BullJob, Queue } from 'bull';
import { User } from '../auth/user.entity';
import { AppConfig } from '../config';
import { JobName, JobOf, QueueName } from '../queue/queue.constants';
import { startedOrGone, startProcessing } from '../queue/start-processing';
import type { NotificationMessage } from './channels/events';
import { Mailer } from './channels/mailer';
import { renderInApp, renderMail } from './channels/templates';
import { WebhookSender } from './channels/webhook-sender';
import { NotificationDelivery } from './delivery.entity';
import { DELIVERY_ATTEMPTS } from './notification-dispatcher';
import { Webhook } from './webhook.entity';

/** A failure worth another attempt: Bull retries it with backoff. */
class Retry extends Error {}

/**
 * Sends one delivery (Bull job `notifications.deliver`). A delivery already sent or failed is
 * left alone, so a job Bull runs twice sends nothing twice; in-app rows are keyed by the
 * delivery. Retryable failures are thrown for Bull's backoff; the last one marks it failed.
 */
@Injectable()
export class DeliveryProcessor implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(DeliveryProcessor.name);
  private readonly mailer: Mailer;
  private readonly webhooks: WebhookSender;
  private started?: Promise<void>;

  constructor(
    private readonly em: EntityManager,
    config: AppConfig,
    @InjectQueue(QueueName.Notifications) private readonly queue: Queue,
  ) {
    this.mailer = new Mailer(config);
    this.webhooks = new WebhookSender(config.webhookAllowPrivate);
  }

  onApplicationBootstrap(): void {
    this.started = startProcessing(
      this.queue,
      JobName.Deliver,
      4,
      (job: BullJob<JobOf<JobName.Deliver>>) =>
        this.deliver(job.data.deliveryId, job.attemptsMade + 1 >= DELIVERY_ATTEMPTS),
    ).catch(() => {}); // the queue closed while starting: nothing to process
  }

  async onModuleDestroy(): Promise<void> {
    await startedOrGone(this.started);
    this.mailer.close();
  }

  async deliver(id: string, lastAttempt = true): Promise<void> {
    const em = this.em.fork();
    const delivery = await em.findOne(NotificationDelivery, id);
    if (!delivery || delivery.state !== 'pending') {
      return;
    }
    delivery.attempts++;
    try {
      const status = await this.send(delivery, em);
      delivery.state = 'sent';
      delivery.sentAt = new Date();
      delivery.lastStatus = status;
      delivery.lastError = undefined;
    } catch (err) {
      const retry = err instanceof Retry;
      delivery.lastError = (err as Error).message.slice(0, 1000);
      if (!retry || lastAttempt) {
        delivery.state = 'failed';
      }
      await em.flush();
      if (retry && !lastAttempt) {
        throw err;
      }
      this.logger.warn(`delivery ${id} (${delivery.channel}) failed: ${delivery.lastError}`);
      return;
    }
    await em.flush();
  }

  /** Sends on the delivery's channel; returns the receiver's HTTP status for webhooks. */
  private async send(
    delivery: NotificationDelivery,
    em: EntityManager,
  ): Promise<number | undefined> {
    const message = delivery.message as unknown as NotificationMessage;
    switch (delivery.channel) {
      case 'inapp': {
        const shown = renderInApp(message);
        await em.getConnection().execute(
          `insert into notification (id, user_id, delivery_id, event, title, body, link, created_at)
             values (gen_random_uuid(), ?, ?, ?, ?, ?, ?, ?) on conflict (delivery_id) do nothing`,
          [
            delivery.userId,
            delivery.id,
            delivery.event,
            shown.title,
            shown.body,
            shown.link ?? null,
            new Date(message.at),
          ],
        );
        return undefined;
      }
      case 'email': {
        const user = await em.findOne(User, delivery.userId, { fields: ['email', 'name'] });
        if (!user?.email) {
          throw new Error('the user has no email address');
        }
        try {
          await this.mailer.send({
            to: user.email,
            ...renderMail(message, user.name),
            messageId: delivery.id,
            headers: { 'X-Labgate-Event': message.event },
          });
        } catch (err) {
          if ((err as { permanent?: boolean }).permanent) {
            throw err;
          }
          throw new Retry((err as Error).message);
        }
        return undefined;
      }
      case 'webhook': {
        const hook = await em.findOne(Webhook, delivery.webhookId ?? '', { populate: ['secret'] });
        if (!hook) {
          throw new Error('the webhook was deleted');
        }
        const result = await this.webhooks.send({
          url: hook.url,
          secret: hook.secret,
          body: { id: delivery.id, ...message },
          deliveryId: delivery.id,
          event: message.event,
        });
        delivery.lastStatus = result.status;
        if (result.ok) {
          return result.status;
        }
        const reason = result.error ?? `the receiver answered ${result.status}`;
        throw result.retryable ? new Retry(reason) : new Error(reason);
      }
    }
  }
}
