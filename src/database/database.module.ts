import { Global, Logger, Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { AppConfig } from '../config';
import { MigrationRunner } from './migration-runner';
import { mikroOrmOptions } from './mikro-orm-options';

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
          registerRequestContext: true,
          forRoutesPath: '{*path}',
          logger: (message: string) => ormLogger.log(message),
        };
      },
    }),
  ],
  providers: [MigrationRunner],
  exports: [MigrationRunner],
})
export class DatabaseModule {}
