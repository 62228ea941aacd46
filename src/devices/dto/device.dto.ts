import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayUnique,
  IsArray,
  IsDefined,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { PageQuery } from '../../common/pagination';
import {
  ADMIN_STATES,
  type AdminState,
  DEVICE_KINDS,
  DEVICE_RUNNERS,
  type DeviceKind,
  type DeviceRunner,
  OBSERVED_STATES,
  type ObservedState,
} from '../device-state';
import { IsLabels, OnlyForSshRunner } from './device-validators';
import { SshSettingsDto } from './ssh-settings.dto';

const NAME = /^[A-Za-z0-9._-]+$/;
const NAME_MESSAGE = 'name must be 1-100 characters of A-Z a-z 0-9 . _ -';
const SERVICES_DESCRIPTION =
  'Service keys (GET /api/v1/services) this device may run; `*` offers every service.';
const LABELS_EXAMPLE = { room: 'B2.14', vendor: 'nvidia' };

/** `:id` of a device or a command. */
export class IdParam {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'id must be a UUID' })
  id: string;
}

export class CreateDeviceDto {
  @ApiProperty({ example: 'gpu-01', minLength: 1, maxLength: 100, pattern: NAME.source })
  @IsString()
  @Length(1, 100, { message: NAME_MESSAGE })
  @Matches(NAME, { message: NAME_MESSAGE })
  name: string;

  @ApiProperty({ enum: DEVICE_KINDS, enumName: 'DeviceKind' })
  @IsIn(DEVICE_KINDS, { message: `kind must be one of ${DEVICE_KINDS.join(', ')}` })
  kind: DeviceKind;

  @ApiProperty({
    enum: DEVICE_RUNNERS,
    enumName: 'DeviceRunner',
    description: 'local: the workers run jobs; agent: its agent pulls them; ssh: batch jobs.',
  })
  @IsIn(DEVICE_RUNNERS, { message: `runner must be one of ${DEVICE_RUNNERS.join(', ')}` })
  runner: DeviceRunner;

  @ApiProperty({
    type: [String],
    example: ['echo', 'float-add'],
    description: SERVICES_DESCRIPTION,
  })
  @IsArray()
  @ArrayMaxSize(200)
  @ArrayUnique()
  @IsString({ each: true })
  @Length(1, 100, { each: true })
  services: string[];

  @ApiProperty({ type: 'integer', minimum: 1, maximum: 256, description: 'Jobs it runs at once.' })
  @IsInt()
  @Min(1)
  @Max(256)
  slots: number;

  @ApiPropertyOptional({ example: 'Building B, room 2.14' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  location?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' } })
  @IsOptional()
  @IsLabels()
  labels?: Record<string, string>;

  @ApiPropertyOptional({
    type: SshSettingsDto,
    description: 'Required for runner ssh, refused for the other runners.',
  })
  @ValidateIf((o: CreateDeviceDto) => o.runner === 'ssh' || o.ssh !== undefined)
  @IsDefined({ message: 'ssh is required for runner ssh' })
  @OnlyForSshRunner()
  // ValidateNested alone takes an array ([]) for the settings object, with nothing in it.
  @IsObject({ message: 'ssh must be an object of SSH settings' })
  @ValidateNested()
  @Type(() => SshSettingsDto)
  ssh?: SshSettingsDto;
}

/** Every field optional; `runner` and `kind` are fixed at registration. */
export class UpdateDeviceDto {
  @ApiPropertyOptional({ example: 'gpu-01', minLength: 1, maxLength: 100, pattern: NAME.source })
  @IsOptional()
  @IsString()
  @Length(1, 100, { message: NAME_MESSAGE })
  @Matches(NAME, { message: NAME_MESSAGE })
  name?: string;

  @ApiPropertyOptional({ type: [String], description: SERVICES_DESCRIPTION })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(200)
  @ArrayUnique()
  @IsString({ each: true })
  @Length(1, 100, { each: true })
  services?: string[];

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 256 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(256)
  slots?: number;

  @ApiPropertyOptional({ nullable: true, description: 'null clears it.' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  location?: string | null;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    example: LABELS_EXAMPLE,
    description: 'Replaces all labels.',
  })
  @IsOptional()
  @IsLabels()
  labels?: Record<string, string>;

  @ApiPropertyOptional({
    enum: ADMIN_STATES,
    enumName: 'AdminState',
    description: 'Only enabled devices get new jobs.',
  })
  @IsOptional()
  @IsIn(ADMIN_STATES, { message: `adminState must be one of ${ADMIN_STATES.join(', ')}` })
  adminState?: AdminState;

  @ApiPropertyOptional({
    type: SshSettingsDto,
    nullable: true,
    description: 'Runner ssh only; replaces all settings.',
  })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => SshSettingsDto)
  ssh?: SshSettingsDto | null;
}

const STATE_FILTERS = [...OBSERVED_STATES, ...ADMIN_STATES] as const;

export class ListDevicesQuery extends PageQuery {
  @ApiPropertyOptional({ enum: DEVICE_KINDS, enumName: 'DeviceKind' })
  @IsOptional()
  @IsIn(DEVICE_KINDS, { message: `kind must be one of ${DEVICE_KINDS.join(', ')}` })
  kind?: DeviceKind;

  @ApiPropertyOptional({
    enum: STATE_FILTERS,
    description: 'An observed state (IDLE, BUSY, DOWN) or an admin state.',
  })
  @IsOptional()
  @IsIn(STATE_FILTERS, { message: `state must be one of ${STATE_FILTERS.join(', ')}` })
  state?: (typeof STATE_FILTERS)[number];

  @ApiPropertyOptional({ example: 'echo', description: 'Devices offering it (or `*`).' })
  @IsOptional()
  @IsString()
  @Length(1, 100)
  service?: string;
}

export class DeviceDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ example: 'gpu-01' })
  name: string;

  @ApiProperty({ enum: DEVICE_KINDS, enumName: 'DeviceKind' })
  kind: DeviceKind;

  @ApiProperty({ enum: DEVICE_RUNNERS, enumName: 'DeviceRunner' })
  runner: DeviceRunner;

  @ApiProperty({ type: [String], example: ['*'] })
  services: string[];

  @ApiProperty()
  slots: number;

  @ApiPropertyOptional()
  location?: string;

  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'string' },
    example: LABELS_EXAMPLE,
  })
  labels: Record<string, string>;

  @ApiProperty({ enum: ADMIN_STATES, enumName: 'AdminState' })
  adminState: AdminState;

  @ApiProperty({
    enum: OBSERVED_STATES,
    enumName: 'ObservedState',
    description: 'From the last heartbeat and the active jobs, at the time of the request.',
  })
  state: ObservedState;

  @ApiPropertyOptional()
  lastHeartbeatAt?: Date;

  @ApiPropertyOptional({ description: 'The status of the last heartbeat.' })
  reportedStatus?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  reportedMetrics?: Record<string, unknown>;

  @ApiProperty({ type: [String], description: 'Job ids the agent said it runs.' })
  runningJobs: string[];

  @ApiProperty({ description: 'Jobs assigned to or running on it.' })
  activeJobs: number;

  @ApiPropertyOptional({ type: SshSettingsDto })
  ssh?: SshSettingsDto;

  @ApiProperty({ example: 'lgd_x1Yz', description: 'The first characters of its token.' })
  tokenHint: string;

  @ApiProperty()
  createdAt: Date;

  @ApiProperty()
  updatedAt: Date;
}

/** A device with its new token (registration and rotation). */
export class DeviceWithTokenDto extends DeviceDto {
  @ApiProperty({
    example: 'lgd_…',
    description: 'The device token for its agent. Shown only once; labgate keeps a hash.',
  })
  token: string;
}

export class DevicePageDto {
  @ApiProperty({ type: [DeviceDto] })
  items: DeviceDto[];

  @ApiPropertyOptional({ description: 'Pass as ?cursor= for the next page; absent on the last.' })
  nextCursor?: string;
}
