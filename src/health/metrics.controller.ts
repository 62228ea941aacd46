import { Controller, Get, Header, UseGuards } from '@nestjs/common';
import {
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { Registry } from 'prom-client';
import { ProblemDto } from '../common/problem';
import { Public } from '../common/public.decorator';
import { SkipRateLimit } from '../common/rate-limit';
import { MetricsService } from './metrics.service';
import { MetricsTokenGuard } from './metrics-token.guard';

/** Prometheus scrape endpoint, at `/metrics` beside `/health` (outside the API prefix). */
@ApiTags('health')
@Controller('metrics')
@SkipRateLimit()
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  // @Public: no user credentials; the metrics token, when configured, is checked by its guard.
  @Public()
  @UseGuards(MetricsTokenGuard)
  @Get()
  @Header('Content-Type', Registry.PROMETHEUS_CONTENT_TYPE)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Prometheus metrics (text exposition format)',
    description:
      'HTTP latency by route template and status; jobs by service and state; jobs awaiting ' +
      'placement; job run times; device states and queue depths; Node.js process metrics. ' +
      'When METRICS_TOKEN is set, send `Authorization: Bearer <METRICS_TOKEN>`; otherwise ' +
      'the endpoint is open, so keep it off the public network.',
  })
  @ApiProduces('text/plain')
  @ApiOkResponse({
    description: 'Prometheus text format 0.0.4.',
    schema: { type: 'string', example: 'labgate_jobs{service="echo",state="queued"} 2' },
  })
  @ApiUnauthorizedResponse({
    type: ProblemDto,
    description: 'METRICS_TOKEN is set and the bearer token is missing or wrong.',
  })
  scrape(): Promise<string> {
    return this.metrics.scrape();
  }
}
