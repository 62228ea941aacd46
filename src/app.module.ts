import { DynamicModule, Module } from '@nestjs/common';
import { AdminModule } from './admin/admin.module';
import { AuditModule } from './audit/audit.module';
import { AuthModule } from './auth/auth.module';
import { CatalogModule } from './catalog/catalog.module';
import { LoggingModule } from './common/logging.module';
import { AppConfig, ConfigModule } from './config';
import { DatabaseModule } from './database/database.module';
import { DevicesModule } from './devices/devices.module';
import { HealthModule } from './health/health.module';
import { JobsModule } from './jobs/jobs.module';
import { NotificationsModule } from './notifications/notifications.module';
import { OutboxModule } from './outbox/outbox.module';
import { QueueModule } from './queue/queue.module';
import { ResultsModule } from './results/results.module';
import { StorageModule } from './storage/storage.module';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    // One instance, imported twice: the health module's metrics read the jobs module's services.
    const jobs = JobsModule.forRoot(config);
    // Likewise: the admin API reuses the auth module's Authenticator and RolesService.
    const auth = AuthModule.forRoot();
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggingModule,
        DatabaseModule,
        QueueModule.forRoot(config),
        AuditModule,
        OutboxModule,
        auth,
        StorageModule,
        CatalogModule,
        DevicesModule,
        jobs,
        ResultsModule.forRoot(config),
        NotificationsModule.forRoot(config),
        HealthModule.forRoot(jobs),
        AdminModule.forRoot(config, { auth, jobs }),
      ],
    };
  }
}
