import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  MaxLength,
} from 'class-validator';
import { COMMAND_TYPES, type CommandState, type CommandType } from '../device-state';

export class HeartbeatDto {
  @ApiPropertyOptional({ example: 'recording', maxLength: 200 })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  status?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, example: { temperature: 21 } })
  @IsOptional()
  @IsObject()
  metrics?: Record<string, unknown>;

  @ApiPropertyOptional({ type: [String], description: 'Ids of the jobs it is running.' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(1000)
  @IsUUID('all', { each: true, message: 'runningJobs must hold job ids (UUIDs)' })
  runningJobs?: string[];
}

export class AgentCommandDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ enum: COMMAND_TYPES, enumName: 'CommandType' })
  type: CommandType;

  @ApiProperty({ type: 'object', additionalProperties: true, example: { jobId: '…' } })
  args: Record<string, unknown>;

  @ApiProperty()
  createdAt: Date;
}

export class HeartbeatReplyDto {
  @ApiProperty({ format: 'uuid' })
  deviceId: string;

  @ApiProperty({ example: 'enclosure-a' })
  name: string;

  @ApiProperty({ example: 20, description: 'Send the next heartbeat within this many seconds.' })
  heartbeatSeconds: number;

  @ApiProperty({
    type: [AgentCommandDto],
    description: 'Every command not yet acknowledged, oldest first: act on each id once.',
  })
  commands: AgentCommandDto[];
}

export class AckCommandDto {
  @ApiProperty({ description: 'false: the command failed.' })
  @IsBoolean()
  ok: boolean;

  @ApiPropertyOptional({ example: 'stopped', maxLength: 1000 })
  @IsOptional()
  @IsString()
  @MaxLength(1000)
  message?: string;
}

export class AckReplyDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ enum: ['acknowledged', 'failed'] })
  state: Extract<CommandState, 'acknowledged' | 'failed'>;
}
