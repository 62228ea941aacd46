import { DynamicModule, MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { ApplicationConfig } from '@nestjs/core';
import { BullModule } from '@nestjs/bull';
import type { RequestHandler } from 'express';
import { DevicesModule } from '../devices/devices.module';
import { QueueName } from '../queue/queue.constants';
import { QueueBoard } from './queue-board';
import { QueueBoardAccess } from './queue-board-access';

/** Under the global prefix, like the rest of the admin API: /api/v1/admin/queues. */
export const QUEUE_BOARD_ROUTE = 'admin/queues';

/**
 * Bull Board at /api/v1/admin/queues, for admins (API processes only). Its Express router
 * sits behind QueueBoardAccess, which authenticates and checks the role itself: the global
 * guard never sees requests that no Nest controller handles.
 */
@Module({})
export class QueueDashboardModule implements NestModule {
  constructor(
    private readonly board: QueueBoard,
    private readonly app: ApplicationConfig,
  ) {}

  /** `auth` and `jobs`: the app's own instances (Authenticator, DeviceQueues), not copies. */
  static forRoot(modules: { auth: DynamicModule; jobs: DynamicModule }): DynamicModule {
    return {
      module: QueueDashboardModule,
      imports: [
        modules.auth,
        modules.jobs,
        DevicesModule,
        BullModule.registerQueue(...Object.values(QueueName).map((name) => ({ name }))),
      ],
      providers: [QueueBoard, QueueBoardAccess],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    this.board.adapter.setBasePath(
      `/${this.app.getGlobalPrefix()}/${QUEUE_BOARD_ROUTE}`.replace(/\/+/g, '/'),
    );
    // getRouter() is typed `any`: it is the Express app bull-board builds.
    const router = this.board.adapter.getRouter() as RequestHandler;
    consumer
      .apply(QueueBoardAccess, this.board.pagePolicy, this.board.refresh, router)
      .forRoutes(QUEUE_BOARD_ROUTE);
  }
}
