import { DynamicModule, Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { AuditModule } from '../audit/audit.module';
import { AccountsModule } from '../auth/accounts.module';
import { User } from '../auth/user.entity';
import { AppConfig, ConfigModule } from '../config';
import { DatabaseModule } from '../database/database.module';
import { DevicesModule } from '../devices/devices.module';
import { JobsModule } from '../jobs/jobs.module';
import { OutboxModule } from '../outbox/outbox.module';
import { QueueModule } from '../queue/queue.module';
import { StorageModule } from '../storage/storage.module';

/** What a command needs besides the database and the audit log. */
export type CliFeature = 'users' | 'devices' | 'jobs';

/**
 * The modules of one command, composed like AppModule but with only what that command uses:
 * no HTTP listener, no OIDC, and Redis only for the job commands. They run with ROLE=api,
 * whatever the environment says: the jobs and queue modules then register producers but no
 * Bull processor and none of the worker's timers, so a command never takes a worker's job.
 */
@Module({})
export class CliModule {
  static forRoot(runtimeConfig: AppConfig, feature: CliFeature) {
    const config = runtimeConfig.with({ role: 'api' });
    const features: Record<CliFeature, Array<DynamicModule | typeof AccountsModule>> = {
      // Not AuthModule: no command signs anyone in, and it discovers the provider at boot.
      users: [AccountsModule],
      devices: [DevicesModule],
      // Job rows reference their owner: the User entity must be known to the ORM.
      jobs: [
        QueueModule.forRoot(config),
        StorageModule,
        DevicesModule,
        JobsModule.forRoot(config),
        MikroOrmModule.forFeature([User]),
      ],
    };
    return {
      module: CliModule,
      imports: [
        ConfigModule.forRoot(config),
        DatabaseModule,
        AuditModule,
        OutboxModule,
        ...features[feature],
      ],
    } satisfies DynamicModule;
  }
}
