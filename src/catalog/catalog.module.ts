import { Logger, Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { AppConfig } from '../config';
import { CatalogController } from './catalog.controller';
import { CatalogService, SERVICE_MANIFESTS } from './catalog.service';
import { loadManifests } from './manifest-loader';
import { ServiceState } from './service-state.entity';

const logger = new Logger('Catalog');

@Module({
  imports: [MikroOrmModule.forFeature([ServiceState])],
  controllers: [CatalogController],
  providers: [
    {
      // Synchronous and at boot: a bad manifest throws here, and the process does not start.
      provide: SERVICE_MANIFESTS,
      inject: [AppConfig],
      useFactory: (config: AppConfig) => {
        const manifests = loadManifests(config.servicesDir);
        logger.log(
          `${manifests.length} service(s) from ${config.servicesDir}: ${manifests.map((m) => m.key).join(', ')}`,
        );
        return manifests;
      },
    },
    CatalogService,
  ],
  exports: [CatalogService],
})
export class CatalogModule {}
