import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig } from '../config';
import { AuditController } from './audit.controller';
import { AuditLogService } from './audit-log.service';
import { QueueDashboardModule } from './queue-dashboard.module';
import { AdminUsersController } from './users.controller';
import { AdminUsersService } from './users.service';

/**
 * Admin API: users, the audit log, the queue dashboard (role `admin` on every route). Service
 * enable/disable, devices, entitlement rules and claims stay with the modules that own them.
 */
@Module({})
export class AdminModule {
  /**
   * `auth` and `jobs` are the app's own module instances, passed in rather than imported anew:
   * a second AuthModule.forRoot() would be a second guard and strategy, a second
   * JobsModule.forRoot() a second scheduler.
   */
  static forRoot(
    config: AppConfig,
    modules: { auth: DynamicModule; jobs: DynamicModule },
  ): DynamicModule {
    return {
      module: AdminModule,
      imports: [modules.auth, ...(config.runsApi ? [QueueDashboardModule.forRoot(modules)] : [])],
      controllers: [AdminUsersController, AuditController],
      providers: [AdminUsersService, AuditLogService],
    };
  }
}
