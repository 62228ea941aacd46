import { DynamicModule, Module } from '@nestjs/common';
import { BullModule } from '@nestjs/bull';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { AppConfig } from '../config';
import { QueueName } from '../queue/queue.constants';
import { NotificationCursor } from './cursor.entity';
import { DeliveryProcessor } from './delivery.processor';
import { NotificationDelivery } from './delivery.entity';
import { NotificationDispatcher } from './notification-dispatcher';
import { Notification } from './notification.entity';
import { NotificationsController } from './notifications.controller';
import { NotificationsService } from './notifications.service';
import { NotificationPreference } from './preference.entity';
import { Recipients } from './recipients';
import { Webhook } from './webhook.entity';

/**
 * Notifications learn of events from the outboxes only (`job_event`, `outbox_event`); the
 * dispatcher and the delivery processor run where this process works (ROLE=worker or all).
 */
@Module({
  // In the static imports: a forFeature call made while building a second app in one process
  // (tests) would clear the entities the first one registered.
  imports: [
    MikroOrmModule.forFeature([
      Notification,
      NotificationDelivery,
      NotificationPreference,
      Webhook,
      NotificationCursor,
    ]),
    BullModule.registerQueue({ name: QueueName.Notifications }),
  ],
})
export class NotificationsModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: NotificationsModule,
      controllers: [NotificationsController],
      providers: [
        NotificationsService,
        ...(config.runsWorker ? [Recipients, NotificationDispatcher, DeliveryProcessor] : []),
      ],
      exports: config.runsWorker ? [NotificationDispatcher, DeliveryProcessor] : [],
    };
  }
}
