import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { PageQuery } from '../../common/pagination';
import { WithinStorableDates } from '../../common/validation';
import {
  ArrayMaxSize,
  ArrayUnique,
  IsArray,
  IsDate,
  IsIn,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  MinLength,
} from 'class-validator';
import {
  RESULT_STATUSES,
  RESULT_VISIBILITIES,
  type ResultStatus,
  type ResultVisibility,
} from '../result.entity';
import { IsPastInstant, IsTag, OWNER_PATTERN, SERVICE_KEY, TAG_PATTERN } from './result-validators';

const MAX_TAGS = 32;
const TAGS_DESCRIPTION = `Up to ${MAX_TAGS} tags of 1-64 characters: ${TAG_PATTERN.source}`;

/** A query parameter given once arrives as a string, given twice as an array: always a list. */
const asList = ({ value }: { value: unknown }) =>
  value === undefined ? undefined : Array.isArray(value) ? value : [value];

export class ArtifactDto {
  @ApiProperty({ example: 'plots/loss.png', description: 'Path inside the outputs archive.' })
  name: string;

  @ApiProperty({ description: 'Bytes.' })
  size: number;

  @ApiProperty({ example: 'image/png' })
  mediaType: string;

  @ApiProperty({ example: '/api/v1/results/3f0c…/artifacts/plots/loss.png' })
  url: string;
}

export class ResultDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ example: 'float-add' })
  service: string;

  @ApiPropertyOptional({ example: '1.0.0' })
  serviceVersion?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'The job it came from (none if submitted).' })
  jobId?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'The device it ran on.' })
  deviceId?: string;

  @ApiProperty({ format: 'uuid' })
  ownerId: string;

  @ApiProperty({ type: 'object', additionalProperties: true, example: { sum: 3 } })
  metrics: Record<string, unknown>;

  @ApiProperty({ type: [ArtifactDto], description: 'Files of the outputs archive.' })
  artifacts: ArtifactDto[];

  @ApiProperty({ type: [String], example: ['gpu', 'baseline'] })
  tags: string[];

  @ApiProperty({ enum: RESULT_VISIBILITIES, enumName: 'ResultVisibility' })
  visibility: ResultVisibility;

  @ApiProperty({
    enum: RESULT_STATUSES,
    enumName: 'ResultStatus',
    description:
      'under_review: a claim is pending (only its owner and admins see it); removed: a claim ' +
      'was approved (admins only).',
  })
  status: ResultStatus;

  @ApiProperty()
  createdAt: Date;

  @ApiProperty({ description: 'When the run happened.' })
  executedAt: Date;

  @ApiProperty()
  updatedAt: Date;
}

export class ResultPageDto {
  @ApiProperty({ type: [ResultDto] })
  items: ResultDto[];

  @ApiPropertyOptional({ description: 'Pass as ?cursor= for the next page; absent on the last.' })
  nextCursor?: string;
}

export class ListResultsQuery extends PageQuery {
  // Longer than PageQuery's: it carries the sort value of the last row, which may be a metric's
  // text. Each rule is declared again: class-validator drops the inherited rules of a property
  // the subclass declares any of its own for.
  @ApiPropertyOptional({ description: 'The nextCursor of the previous page (same sort).' })
  @IsOptional()
  @IsString()
  @MaxLength(8000)
  declare cursor?: string;

  @ApiPropertyOptional({ example: 'float-add' })
  @IsOptional()
  @IsString()
  @Matches(SERVICE_KEY, { message: 'service must be a service key' })
  service?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'Results of runs on this device.' })
  @IsOptional()
  @Matches(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, {
    message: 'device must be a UUID',
  })
  device?: string;

  @ApiPropertyOptional({
    description: '`me`, or (admins) any user id.',
    example: 'me',
  })
  @IsOptional()
  @Matches(OWNER_PATTERN, { message: 'owner must be "me" or a user id (UUID)' })
  owner?: string;

  @ApiPropertyOptional({
    type: [String],
    description: 'Repeatable: results carrying every tag given.',
    example: ['gpu'],
  })
  @IsOptional()
  @Transform(asList)
  @IsArray()
  @ArrayMaxSize(MAX_TAGS)
  @IsTag({ each: true })
  tag?: string[];

  @ApiPropertyOptional({ description: 'Created at or after (ISO 8601).' })
  @IsOptional()
  @Type(() => Date)
  @IsDate({ message: 'createdSince must be an ISO 8601 date-time' })
  @WithinStorableDates('createdSince')
  createdSince?: Date;

  @ApiPropertyOptional({ description: 'Created before (ISO 8601).' })
  @IsOptional()
  @Type(() => Date)
  @IsDate({ message: 'createdBefore must be an ISO 8601 date-time' })
  @WithinStorableDates('createdBefore')
  createdBefore?: Date;

  @ApiPropertyOptional({ description: 'Executed at or after (ISO 8601).' })
  @IsOptional()
  @Type(() => Date)
  @IsDate({ message: 'executedSince must be an ISO 8601 date-time' })
  @WithinStorableDates('executedSince')
  executedSince?: Date;

  @ApiPropertyOptional({ description: 'Executed before (ISO 8601).' })
  @IsOptional()
  @Type(() => Date)
  @IsDate({ message: 'executedBefore must be an ISO 8601 date-time' })
  @WithinStorableDates('executedBefore')
  executedBefore?: Date;

  @ApiPropertyOptional({
    enum: RESULT_STATUSES,
    enumName: 'ResultStatus',
    description: 'Only results in this moderation state (among those you may see).',
  })
  @IsOptional()
  @IsIn(RESULT_STATUSES, { message: `status must be one of ${RESULT_STATUSES.join(', ')}` })
  status?: ResultStatus;

  @ApiPropertyOptional({
    type: [String],
    description:
      'Repeatable, all must hold: `metrics.<path><op><value>` with op one of = != < <= > >= ~ ' +
      '(~: text contains, or array has the element). Numbers compare numerically, true/false ' +
      'as booleans, anything else (or a "quoted" value) as text; a comparison matches only ' +
      'where the path holds a value of that type.',
    example: ['metrics.sum>3', 'metrics.model.name=resnet'],
  })
  @IsOptional()
  @Transform(asList)
  @IsArray()
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @MaxLength(300, { each: true })
  filter?: string[];

  @ApiPropertyOptional({
    description:
      'createdAt, executedAt or metrics.<path>; prefix - for descending. Results without the ' +
      'metric come last. Default -createdAt.',
    example: '-metrics.sum',
    default: '-createdAt',
  })
  @IsOptional()
  @IsString()
  @MaxLength(300)
  sort: string = '-createdAt';
}

export class SubmitResultDto {
  @ApiProperty({ example: 'float-add', description: 'The service whose result schema applies.' })
  @IsString()
  @Matches(SERVICE_KEY, { message: 'service must be a service key' })
  service: string;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    example: { sum: 3 },
    description: "Validated against the service's result schema.",
  })
  @IsObject({ message: 'metrics must be a JSON object' })
  metrics: Record<string, unknown>;

  @ApiProperty({
    example: '2026-11-20T14:03:00Z',
    description:
      'When the run happened: ISO 8601 with a timezone (Z or ±hh:mm), not in the future.',
  })
  @IsPastInstant()
  executedAt: string;

  @ApiPropertyOptional({ type: [String], description: TAGS_DESCRIPTION, example: ['cluster-x'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_TAGS)
  @ArrayUnique()
  @IsTag({ each: true })
  tags?: string[];

  @ApiPropertyOptional({
    enum: RESULT_VISIBILITIES,
    enumName: 'ResultVisibility',
    default: 'private',
  })
  @IsOptional()
  @IsIn(RESULT_VISIBILITIES, {
    message: `visibility must be one of ${RESULT_VISIBILITIES.join(', ')}`,
  })
  visibility?: ResultVisibility;
}

export class ResultTagsDto {
  @ApiProperty({ type: [String], description: `Replaces all tags. ${TAGS_DESCRIPTION}` })
  @IsArray()
  @ArrayMaxSize(MAX_TAGS)
  @ArrayUnique()
  @IsTag({ each: true })
  tags: string[];
}

export class PatchResultDto {
  @ApiProperty({ enum: RESULT_VISIBILITIES, enumName: 'ResultVisibility' })
  @IsIn(RESULT_VISIBILITIES, {
    message: `visibility must be one of ${RESULT_VISIBILITIES.join(', ')}`,
  })
  visibility: ResultVisibility;
}

export class ClaimResultDto {
  @ApiProperty({ minLength: 1, maxLength: 2000, example: 'Duplicate of another run.' })
  @IsString()
  @MinLength(1)
  @MaxLength(2000)
  reason: string;
}
