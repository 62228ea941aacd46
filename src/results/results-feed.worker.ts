import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { ResultsFeed } from './results-feed';

const EVERY_MS = 1_000;

/** Worker processes read the job outbox once at boot and then every second. */
@Injectable()
export class ResultsFeedWorker implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ResultsFeedWorker.name);
  private timer?: NodeJS.Timeout;

  constructor(private readonly feed: ResultsFeed) {}

  onApplicationBootstrap(): void {
    void this.feed.tick();
    this.timer = setInterval(() => void this.feed.tick(), EVERY_MS);
    this.timer.unref();
    this.logger.log('reading succeeded jobs into results every second');
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    // The ORM closes after this: let a pass in progress finish first.
    await this.feed.idle();
  }
}
