import { DynamicModule, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { DevicesModule } from '../devices/devices.module';
import { DeviceMetrics } from './device-metrics';
import { HealthController } from './health.controller';
import { HttpMetrics } from './http-metrics';
import { JobMetrics } from './job-metrics';
import { MetricsController } from './metrics.controller';
import { MetricsRegistry } from './metrics.registry';
import { MetricsService } from './metrics.service';
import { MetricsTokenGuard } from './metrics-token.guard';
import { RedisHealthIndicator } from './redis.health';

/** Liveness, readiness and Prometheus metrics. */
@Module({})
export class HealthModule {
  /**
   * `jobs` is the app's JobsModule (JobsModule.forRoot): dynamic modules are told apart by
   * reference, so importing a second `forRoot()` here would build a second jobs module.
   */
  static forRoot(jobs: DynamicModule): DynamicModule {
    return {
      module: HealthModule,
      imports: [TerminusModule.forRoot({ logger: false }), DevicesModule, jobs],
      controllers: [HealthController, MetricsController],
      providers: [
        RedisHealthIndicator,
        MetricsRegistry,
        HttpMetrics,
        JobMetrics,
        DeviceMetrics,
        MetricsService,
        MetricsTokenGuard,
      ],
      exports: [HttpMetrics],
    };
  }
}
