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
    example: { database: { status: 'up' }, redis: { status: 'up', maxmemoryPolicy: 'noeviction' } },
  })
  checks: Record<string, Record<string, unknown>>;
}
