import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsDate, IsIn, IsOptional, IsString, IsUUID, MaxLength } from 'class-validator';
import {
  AUDIT_TARGETS,
  AUDITED_ACTION_NAMES,
  AUDITED_ACTION_PREFIXES,
  AUDITED_ACTIONS,
  type AuditedAction,
  type AuditTarget,
} from '../../audit/audited-actions';
import { PageQuery } from '../../common/pagination';
import { WithinStorableDates } from '../../common/validation';

const ACTION_FILTERS = [...AUDITED_ACTION_NAMES, ...AUDITED_ACTION_PREFIXES];

const ACTION_TABLE = AUDITED_ACTION_NAMES.map(
  (name) => `- \`${name}\` (${AUDITED_ACTIONS[name].target}): ${AUDITED_ACTIONS[name].description}`,
).join('\n');

export class ListAuditQuery extends PageQuery {
  @ApiPropertyOptional({ format: 'uuid', description: 'The user (or device) that acted.' })
  @IsOptional()
  @IsUUID('all', { message: 'actor must be a user or device id (UUID)' })
  actor?: string;

  @ApiPropertyOptional({
    enum: ACTION_FILTERS,
    enumName: 'AuditActionFilter',
    description:
      'An action, or a family ending with a dot (`device.` is every device action). ' +
      `The audited actions:\n${ACTION_TABLE}`,
  })
  @IsOptional()
  @IsIn(ACTION_FILTERS, {
    message:
      'action must be an audited action or a family such as device. (GET /api/v1/admin/audit/actions)',
  })
  action?: string;

  @ApiPropertyOptional({ enum: AUDIT_TARGETS, enumName: 'AuditTarget' })
  @IsOptional()
  @IsIn(AUDIT_TARGETS, { message: `targetType must be one of ${AUDIT_TARGETS.join(', ')}` })
  targetType?: AuditTarget;

  @ApiPropertyOptional({ description: 'The id (or service key) of the object acted on.' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  targetId?: string;

  @ApiPropertyOptional({ description: 'Events at or after (ISO 8601).' })
  @IsOptional()
  @Type(() => Date)
  @IsDate({ message: 'from must be an ISO 8601 date-time' })
  @WithinStorableDates('from')
  from?: Date;

  @ApiPropertyOptional({ description: 'Events before (ISO 8601).' })
  @IsOptional()
  @Type(() => Date)
  @IsDate({ message: 'to must be an ISO 8601 date-time' })
  @WithinStorableDates('to')
  to?: Date;
}

export class AuditActorDto {
  @ApiProperty({ enum: ['user', 'device', 'system', 'ticket'] })
  kind: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'The user or device; absent for labgate.' })
  id?: string;

  @ApiPropertyOptional({ description: "A user's email, as it is now." })
  email?: string;

  @ApiPropertyOptional({ description: "A user's name, as it is now." })
  name?: string;
}

export class AuditEventDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty()
  at: Date;

  @ApiProperty({ type: AuditActorDto })
  actor: AuditActorDto;

  @ApiProperty({ enum: AUDITED_ACTION_NAMES, enumName: 'AuditedAction' })
  action: AuditedAction;

  @ApiProperty({ enum: AUDIT_TARGETS, enumName: 'AuditTarget' })
  targetType: AuditTarget;

  @ApiPropertyOptional()
  targetId?: string;

  @ApiPropertyOptional({ example: '192.0.2.10', description: 'Where the request came from.' })
  ip?: string;

  @ApiPropertyOptional({ description: 'The X-Request-Id of the request (joins the logs).' })
  requestId?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  details?: Record<string, unknown>;
}

export class AuditEventPageDto {
  @ApiProperty({ type: [AuditEventDto] })
  items: AuditEventDto[];

  @ApiPropertyOptional({ description: 'Pass as ?cursor= for the next page; absent on the last.' })
  nextCursor?: string;
}

export class AuditedActionDto {
  @ApiProperty({ enum: AUDITED_ACTION_NAMES, enumName: 'AuditedAction' })
  action: AuditedAction;

  @ApiProperty({ enum: AUDIT_TARGETS, enumName: 'AuditTarget' })
  targetType: AuditTarget;

  @ApiProperty()
  description: string;
}
