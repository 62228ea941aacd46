import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsIn,
  IsObject,
  IsOptional,
  IsString,
  IsUrl,
  IsUUID,
  MaxLength,
  ValidateNested,
} from 'class-validator';
import { NOTIFICATION_EVENTS } from '../channels/events';
import { CHANNELS } from '../delivery.entity';

export class NotificationDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ enum: NOTIFICATION_EVENTS })
  event: string;

  @ApiProperty({ example: 'float-add job succeeded' })
  title: string;

  @ApiProperty()
  body: string;

  @ApiPropertyOptional({ description: 'Where to look: the job, its result, the device.' })
  link?: string;

  @ApiProperty()
  createdAt: Date;

  @ApiPropertyOptional({ description: 'Absent while unread.' })
  readAt?: Date;
}

export class NotificationPageDto {
  @ApiProperty({ type: [NotificationDto], description: 'Unread first, then newest first.' })
  items: NotificationDto[];

  @ApiProperty({ description: 'Unread notifications in all.' })
  unread: number;

  @ApiPropertyOptional()
  nextCursor?: string;
}

export class MarkReadDto {
  @ApiPropertyOptional({
    type: [String],
    format: 'uuid',
    description: 'These notifications; absent: all of yours.',
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(500)
  @IsUUID('all', { each: true, message: 'each id must be a UUID' })
  ids?: string[];
}

export class MarkedReadDto {
  @ApiProperty()
  updated: number;
}

export class PreferenceDto {
  @ApiProperty({ enum: NOTIFICATION_EVENTS })
  @IsIn([...NOTIFICATION_EVENTS], {
    message: `event must be one of ${NOTIFICATION_EVENTS.join(', ')}`,
  })
  event: string;

  @ApiProperty({ enum: CHANNELS })
  @IsIn([...CHANNELS], { message: `channel must be one of ${CHANNELS.join(', ')}` })
  channel: string;

  @ApiProperty()
  @IsBoolean()
  enabled: boolean;
}

export class PreferencesDto {
  @ApiProperty({ type: [PreferenceDto], description: 'Every event × channel, defaults included.' })
  @IsArray()
  @ArrayMaxSize(100)
  // ValidateNested alone lets an array through in place of an object ([[]]).
  @IsObject({ each: true, message: 'each preference must be an object {event, channel, enabled}' })
  @ValidateNested({ each: true })
  @Type(() => PreferenceDto)
  preferences: PreferenceDto[];
}

export class CreateWebhookDto {
  @ApiProperty({ example: 'https://lab.example.org/labgate-hook' })
  @IsString()
  @MaxLength(2000)
  @IsUrl(
    { protocols: ['https', 'http'], require_protocol: true, require_tld: false },
    { message: 'url must be an http(s) URL' },
  )
  url: string;

  @ApiProperty({ type: [String], enum: [...NOTIFICATION_EVENTS, '*'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayUnique()
  @IsIn([...NOTIFICATION_EVENTS, '*'], {
    each: true,
    message: `each event must be one of ${NOTIFICATION_EVENTS.join(', ')} or *`,
  })
  events: string[];
}

export class WebhookDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty()
  url: string;

  @ApiProperty({ type: [String] })
  events: string[];

  @ApiProperty()
  createdAt: Date;
}

export class CreatedWebhookDto extends WebhookDto {
  @ApiProperty({
    description:
      'Signs each delivery: X-Labgate-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of "t.body">. Shown once.',
  })
  secret: string;
}

export class DeliveryDto {
  @ApiProperty({ format: 'uuid', description: 'Also sent as X-Labgate-Delivery.' })
  id: string;

  @ApiProperty()
  event: string;

  @ApiProperty({ enum: ['pending', 'sent', 'failed'] })
  state: string;

  @ApiProperty()
  attempts: number;

  @ApiPropertyOptional({ description: "The receiver's HTTP status on the last attempt." })
  lastStatus?: number;

  @ApiPropertyOptional()
  lastError?: string;

  @ApiProperty()
  createdAt: Date;

  @ApiPropertyOptional()
  sentAt?: Date;
}
