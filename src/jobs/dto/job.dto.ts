import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsDate,
  IsEnum,
  IsInt,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  Max,
  Min,
} from 'class-validator';
import { PageQuery } from '../../common/pagination';
import { WithinStorableDates } from '../../common/validation';
import { JobState } from '../job-state';

export class JobLinksDto {
  @ApiProperty({ example: '/api/v1/jobs/3f0c…' })
  self: string;

  @ApiProperty({ example: '/api/v1/jobs/3f0c…/events' })
  events: string;

  @ApiProperty({ example: '/api/v1/jobs/3f0c…/log' })
  log: string;

  @ApiProperty({ example: '/api/v1/jobs/3f0c…/result' })
  result: string;

  @ApiProperty({ example: '/api/v1/jobs/3f0c…/cancel' })
  cancel: string;
}

export class SubmittedJobDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiPropertyOptional({
    description:
      'The ticket: alone it opens this job (X-Job-Token header or ?token=). Shown only once.',
    example: 'lgt_…',
  })
  token?: string;

  @ApiProperty({ enum: JobState })
  status: JobState;

  @ApiPropertyOptional({ format: 'uuid', description: 'The device a batch job runs on.' })
  deviceId?: string;

  @ApiProperty({ type: JobLinksDto })
  links: JobLinksDto;
}

export class SubmittedBatchDto {
  @ApiProperty({ format: 'uuid', description: 'GET /api/v1/jobs?batchId=… lists its jobs.' })
  batchId: string;

  @ApiProperty({ type: [SubmittedJobDto], description: 'One job per target device.' })
  jobs: SubmittedJobDto[];
}

export class InputFileDto {
  @ApiProperty()
  input: string;

  @ApiProperty()
  filename: string;

  @ApiProperty()
  size: number;

  @ApiProperty()
  sha256: string;
}

export class JobResultDto {
  @ApiProperty({ description: 'Bytes of the result tar.gz' })
  size: number;

  @ApiProperty()
  sha256: string;

  @ApiProperty({ example: '/api/v1/jobs/3f0c…/result' })
  url: string;
}

export class JobDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ example: 'echo' })
  service: string;

  @ApiProperty({ example: '1.0.0' })
  serviceVersion: string;

  @ApiProperty({ enum: JobState })
  status: JobState;

  @ApiPropertyOptional({ description: 'Why it is in this state.' })
  reason?: string;

  @ApiProperty({ minimum: 0, maximum: 100 })
  progress: number;

  @ApiPropertyOptional()
  progressMessage?: string;

  @ApiProperty({ type: 'object', additionalProperties: true, example: { message: 'hi' } })
  inputs: Record<string, unknown>;

  @ApiProperty({ type: [InputFileDto] })
  inputFiles: InputFileDto[];

  @ApiProperty()
  attempts: number;

  @ApiProperty({ description: "Higher runs first among one user's waiting jobs." })
  priority: number;

  @ApiPropertyOptional({ format: 'uuid', description: 'Where it is placed, or where it ran.' })
  deviceId?: string;

  @ApiPropertyOptional({ format: 'uuid' })
  batchId?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, example: { sum: 3 } })
  metrics?: Record<string, unknown>;

  @ApiPropertyOptional({ type: JobResultDto })
  result?: JobResultDto;

  @ApiProperty()
  createdAt: Date;

  @ApiProperty()
  updatedAt: Date;

  @ApiPropertyOptional()
  startedAt?: Date;

  @ApiPropertyOptional()
  finishedAt?: Date;

  @ApiProperty({ type: JobLinksDto })
  links: JobLinksDto;
}

export class JobPageDto {
  @ApiProperty({ type: [JobDto] })
  items: JobDto[];

  @ApiPropertyOptional()
  nextCursor?: string;
}

export class ListJobsQuery extends PageQuery {
  @ApiPropertyOptional({ enum: JobState })
  @IsOptional()
  @IsEnum(JobState)
  status?: JobState;

  @ApiPropertyOptional({ example: 'echo' })
  @IsOptional()
  @IsString()
  @Matches(/^[a-z0-9][a-z0-9-]{0,62}$/, { message: 'service must be a service key' })
  service?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'Only the jobs of this batch session.' })
  @IsOptional()
  @IsUUID('all', { message: 'batchId must be a UUID' })
  batchId?: string;

  @ApiPropertyOptional({ description: 'Only jobs created at or after (ISO 8601).' })
  @IsOptional()
  @Type(() => Date)
  @IsDate({ message: 'since must be an ISO 8601 date-time' })
  @WithinStorableDates('since')
  since?: Date;
}

export class SubmitJsonDto {
  @ApiProperty({ example: 'float-add' })
  service: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, example: { a: 1, b: 2 } })
  inputs?: Record<string, unknown>;

  @ApiPropertyOptional({
    type: [String],
    format: 'uuid',
    description:
      'A session on several devices: one job per device, under one batchId (201 SubmittedBatchDto).',
  })
  targets?: string[];

  @ApiPropertyOptional({ minimum: -1000, maximum: 1000, description: 'Admins only.' })
  priority?: number;
}

export class PatchJobDto {
  @ApiProperty({ minimum: -1000, maximum: 1000, description: 'Higher runs first.' })
  @IsInt()
  @Min(-1000)
  @Max(1000)
  priority: number;
}
