import { Global, Logger, Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { AppConfig } from '../config';
import { ChangeFeed } from './change-feed';
import { MigrationRunner } from './migration-runner';
import { mikroOrmOptions } from './mikro-orm-options';
import { requestEntityManager } from './request-context';

const ormLogger = new Logger('MikroORM');

@Global()
@Module({
  imports: [
    MikroOrmModule.forRootAsync({
      driver: PostgreSqlDriver,
      inject: [AppConfig],
      useFactory: (config: AppConfig) => {
        if (!config.database.url) {
          throw new Error('bootstrap did not resolve a database URL');
        }
        return {
          ...mikroOrmOptions(config.database.url, config.database.poolMax),
          autoLoadEntities: true,
          // Each HTTP request's EntityManager comes from requestContext (bootstrap), which
          // forks it on first use; MikroORM asks for it through `context`.
          registerRequestContext: false,
          context: requestEntityManager,
          logger: (message: string) => ormLogger.log(message),
        };
      },
    }),
  ],
  providers: [MigrationRunner, ChangeFeed],
  exports: [MigrationRunner, ChangeFeed],
})
export class DatabaseModule {}
