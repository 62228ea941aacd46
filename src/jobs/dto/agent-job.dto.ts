import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min, MinLength } from 'class-validator';
import { JobState } from '../job-state';

export class ClaimQuery {
  @ApiPropertyOptional({
    minimum: 0,
    maximum: 30,
    default: 30,
    description: 'Seconds to wait for work',
  })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(30)
  wait: number = 30;
}

export class AgentRunSpecDto {
  @ApiProperty({ type: [String], example: ['node', '{serviceDir}/main.js'] })
  command: string[];

  @ApiProperty({ type: [String] })
  env: string[];

  @ApiProperty()
  timeoutSeconds: number;

  @ApiProperty()
  maxOutputBytes: number;
}

export class AgentInputFileDto {
  @ApiProperty()
  input: string;

  @ApiProperty()
  filename: string;

  @ApiProperty({ description: 'Path in the work directory (inputs/<input>/<file>)' })
  path: string;

  @ApiProperty()
  size: number;

  @ApiProperty()
  sha256: string;
}

export class ClaimedJobDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty()
  service: string;

  @ApiProperty()
  serviceVersion: string;

  @ApiProperty({ description: 'Which attempt this is (1 for the first)' })
  attempt: number;

  @ApiProperty({ type: 'object', additionalProperties: true })
  inputs: Record<string, unknown>;

  @ApiProperty({ type: [AgentInputFileDto] })
  inputFiles: AgentInputFileDto[];

  @ApiProperty({ type: AgentRunSpecDto })
  run: AgentRunSpecDto;

  @ApiProperty({ example: '/api/v1/agent/jobs/3f0c…/inputs' })
  inputsUrl: string;
}

export class AgentJobStatusDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ enum: JobState })
  status: JobState;
}

export class AgentProgressDto {
  @ApiProperty({ minimum: 0, maximum: 100 })
  @IsInt()
  @Min(0)
  @Max(100)
  percent: number;

  @ApiPropertyOptional({ maxLength: 500 })
  @IsOptional()
  @IsString()
  @MaxLength(500)
  message?: string;
}

export class AgentFailDto {
  @ApiProperty({ minLength: 1, maxLength: 2000, example: 'camera disconnected' })
  @IsString()
  @MinLength(1)
  @MaxLength(2000)
  reason: string;
}

export class AgentCompleteDto {
  @ApiPropertyOptional({ type: 'string', description: 'JSON object (field or file)' })
  metrics?: string;

  @ApiPropertyOptional({ type: 'string', format: 'binary', description: 'The run log' })
  log?: unknown;

  @ApiPropertyOptional({ type: 'string', format: 'binary', description: 'outputs/ as tar.gz' })
  result?: unknown;
}
