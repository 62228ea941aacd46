import { Controller, Get, HttpStatus, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheckService, MikroOrmHealthIndicator } from '@nestjs/terminus';
import { ProblemDto, ProblemException } from '../common/problem';
import { Public } from '../common/public.decorator';
import { SkipRateLimit } from '../common/rate-limit';
import { LivenessDto, ReadinessDto } from './health.dto';
import { RedisHealthIndicator } from './redis.health';

interface TerminusFailure {
  error?: Record<string, { message?: string }>;
  details?: Record<string, Record<string, unknown>>;
}

@ApiTags('health')
@Controller('health')
// Probes and orchestrators must never be refused for traffic of others.
@SkipRateLimit()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: MikroOrmHealthIndicator,
    private readonly redis: RedisHealthIndicator,
  ) {}

  @Public()
  @Get('live')
  @ApiOkResponse({ type: LivenessDto, description: 'The process is up and answering.' })
  live(): LivenessDto {
    return { status: 'ok' };
  }

  @Public()
  @Get('ready')
  @ApiOkResponse({
    type: ReadinessDto,
    description: 'PostgreSQL and Redis both answer (warnings name what an operator should fix).',
  })
  @ApiServiceUnavailableResponse({ type: ProblemDto, description: 'A dependency is down.' })
  async ready(): Promise<ReadinessDto> {
    try {
      const result = await this.health.check([
        () => this.database.pingCheck('database', { timeout: 1500 }),
        () => this.redis.check('redis'),
      ]);
      return { status: 'ok', checks: result.details, warnings: warningsOf(result.details) };
    } catch (err) {
      if (!(err instanceof ServiceUnavailableException)) {
        throw err;
      }
      const failure = err.getResponse() as TerminusFailure;
      const down = Object.entries(failure.error ?? {}).map(
        ([name, info]) => `${name} (${info.message ?? 'down'})`,
      );
      throw new ProblemException(HttpStatus.SERVICE_UNAVAILABLE, `Not ready: ${down.join(', ')}`, {
        checks: failure.details ?? {},
      });
    }
  }
}

/** The `warning` a check reported, prefixed with its name. */
function warningsOf(details: Record<string, Record<string, unknown>>): string[] {
  return Object.entries(details).flatMap(([name, detail]) =>
    typeof detail.warning === 'string' ? [`${name}: ${detail.warning}`] : [],
  );
}
