import { ApiProperty } from '@nestjs/swagger';

export class LivenessDto {
  @ApiProperty({ example: 'ok' })
  status: 'ok';
}

export class ReadinessDto {
  @ApiProperty({ example: 'ok' })
  status: 'ok';

  @ApiProperty({
    description: 'Each checked part and what it reported',
    example: {
      database: { status: 'up' },
      redis: { status: 'up', maxmemoryPolicy: 'noeviction', maxmemory: 0 },
    },
  })
  checks: Record<string, Record<string, unknown>>;

  @ApiProperty({
    type: [String],
    description:
      'Problems that do not stop this process from serving but need an operator, e.g. a Redis ' +
      'that would evict keys (queued work lost). Empty when there are none.',
    example: [
      'redis: Redis may evict keys: maxmemory-policy is allkeys-lru with maxmemory 100 MiB. ' +
        'Bull needs maxmemory-policy noeviction, or queued work can be lost under memory pressure.',
    ],
  })
  warnings: string[];
}
