import { DynamicModule, Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { CatalogModule } from '../catalog/catalog.module';
import { AppConfig } from '../config';
import { ClaimsController } from './claims.controller';
import { ClaimsService } from './claims.service';
import { ResultClaim } from './result-claim.entity';
import { ResultFeedCursor } from './result-feed-cursor.entity';
import { Result } from './result.entity';
import { ResultsController } from './results.controller';
import { ResultsFeed } from './results-feed';
import { ResultsFeedWorker } from './results-feed.worker';
import { ResultsService } from './results.service';

/**
 * The result catalogue. It learns of succeeded jobs from the job outbox (ResultsFeed), never
 * from the jobs module; workers run the feed on a timer, any process may drain it.
 */
// Entities are registered in the static imports: a forFeature call made while building a
// second app in one process (tests) would clear the entities the first one registered.
@Module({
  imports: [MikroOrmModule.forFeature([Result, ResultClaim, ResultFeedCursor]), CatalogModule],
})
export class ResultsModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: ResultsModule,
      controllers: [ResultsController, ClaimsController],
      providers: [
        ResultsService,
        ClaimsService,
        ResultsFeed,
        ...(config.runsWorker ? [ResultsFeedWorker] : []),
      ],
      exports: [ResultsService],
    };
  }
}
