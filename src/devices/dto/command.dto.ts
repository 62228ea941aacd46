import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsObject, IsOptional } from 'class-validator';
import {
  COMMAND_STATES,
  COMMAND_TYPES,
  type CommandState,
  type CommandType,
} from '../device-state';

export class IssueCommandDto {
  @ApiProperty({
    enum: COMMAND_TYPES,
    enumName: 'CommandType',
    description: '`stop` with `args.jobId` stops that job.',
  })
  @IsIn(COMMAND_TYPES, { message: `type must be one of ${COMMAND_TYPES.join(', ')}` })
  type: CommandType;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, example: { session: 'A12' } })
  @IsOptional()
  @IsObject()
  args?: Record<string, unknown>;
}

export class DeviceCommandDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ format: 'uuid' })
  deviceId: string;

  @ApiProperty({ enum: COMMAND_TYPES, enumName: 'CommandType' })
  type: CommandType;

  @ApiProperty({ type: 'object', additionalProperties: true })
  args: Record<string, unknown>;

  @ApiProperty({
    enum: COMMAND_STATES,
    enumName: 'CommandState',
    description: 'pending → delivered (in a heartbeat reply) → acknowledged | failed.',
  })
  state: CommandState;

  @ApiProperty({ description: 'A user id, or `system`.' })
  issuedBy: string;

  @ApiProperty()
  createdAt: Date;

  @ApiPropertyOptional()
  deliveredAt?: Date;

  @ApiPropertyOptional()
  acknowledgedAt?: Date;

  @ApiPropertyOptional({ description: "The agent's answer in its ack." })
  message?: string;
}

export class DeviceCommandPageDto {
  @ApiProperty({ type: [DeviceCommandDto] })
  items: DeviceCommandDto[];

  @ApiPropertyOptional({ description: 'Pass as ?cursor= for the next page; absent on the last.' })
  nextCursor?: string;
}
