import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  ParseUUIDPipe,
  Post,
  Put,
  Query,
} from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { CurrentPrincipal, Origin, type RequestOrigin } from '../common/auth.decorators';
import { PageQuery } from '../common/pagination';
import type { UserPrincipal } from '../common/principal';
import { ProblemDto } from '../common/problem';
import {
  CreatedWebhookDto,
  CreateWebhookDto,
  DeliveryDto,
  MarkedReadDto,
  MarkReadDto,
  NotificationPageDto,
  PreferenceDto,
  PreferencesDto,
  WebhookDto,
} from './dto/notification.dto';
import { NotificationsService } from './notifications.service';

/** The signed-in user's notifications: in-app, preferences per event and channel, webhooks. */
@ApiTags('notifications')
@Controller('me')
export class NotificationsController {
  constructor(private readonly notifications: NotificationsService) {}

  @Get('notifications')
  @ApiOperation({ summary: 'Your notifications, unread first' })
  @ApiOkResponse({ type: NotificationPageDto })
  list(
    @CurrentPrincipal() user: UserPrincipal,
    @Query() query: PageQuery,
  ): Promise<NotificationPageDto> {
    return this.notifications.list(user, query.limit, query.cursor);
  }

  @Post('notifications/read')
  @HttpCode(200)
  @ApiOperation({ summary: 'Mark notifications read (all of yours without ids)' })
  @ApiOkResponse({ type: MarkedReadDto })
  @ApiBadRequestResponse({ type: ProblemDto })
  async read(
    @CurrentPrincipal() user: UserPrincipal,
    @Body() body: MarkReadDto,
  ): Promise<MarkedReadDto> {
    return { updated: await this.notifications.markRead(user, body.ids) };
  }

  @Get('notification-preferences')
  @ApiOperation({ summary: 'Which events reach you on which channel (defaults included)' })
  @ApiOkResponse({ type: PreferencesDto })
  async preferences(@CurrentPrincipal() user: UserPrincipal): Promise<PreferencesDto> {
    return { preferences: await this.notifications.preferences(user) };
  }

  @Put('notification-preferences')
  @ApiOperation({ summary: 'Set some event × channel choices; the others keep theirs' })
  @ApiOkResponse({ type: PreferencesDto })
  @ApiBadRequestResponse({ type: ProblemDto })
  async setPreferences(
    @CurrentPrincipal() user: UserPrincipal,
    @Body() body: PreferencesDto,
  ): Promise<PreferencesDto> {
    const preferences: PreferenceDto[] = await this.notifications.setPreferences(
      user,
      body.preferences,
    );
    return { preferences };
  }

  @Post('webhooks')
  @ApiOperation({
    summary: 'Add a webhook: signed JSON POSTs for the events you name',
    description:
      'URLs resolving to loopback or private addresses are refused unless WEBHOOK_ALLOW_PRIVATE.',
  })
  @ApiCreatedResponse({ type: CreatedWebhookDto })
  @ApiBadRequestResponse({ type: ProblemDto })
  @ApiConflictResponse({ type: ProblemDto, description: 'Too many webhooks.' })
  createWebhook(
    @CurrentPrincipal() user: UserPrincipal,
    @Body() body: CreateWebhookDto,
    @Origin() origin: RequestOrigin,
  ): Promise<CreatedWebhookDto> {
    return this.notifications.createWebhook(user, body.url, body.events, origin);
  }

  @Get('webhooks')
  @ApiOperation({ summary: 'Your webhooks (secrets are not shown again)' })
  @ApiOkResponse({ type: [WebhookDto] })
  webhooks(@CurrentPrincipal() user: UserPrincipal): Promise<WebhookDto[]> {
    return this.notifications.webhooks(user);
  }

  @Delete('webhooks/:id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Remove a webhook' })
  @ApiNoContentResponse()
  @ApiNotFoundResponse({ type: ProblemDto })
  deleteWebhook(
    @CurrentPrincipal() user: UserPrincipal,
    @Param('id', new ParseUUIDPipe()) id: string,
    @Origin() origin: RequestOrigin,
  ): Promise<void> {
    return this.notifications.deleteWebhook(user, id, origin);
  }

  @Get('webhooks/:id/deliveries')
  @ApiOperation({ summary: "A webhook's last 50 deliveries, with the receiver's status codes" })
  @ApiOkResponse({ type: [DeliveryDto] })
  @ApiNotFoundResponse({ type: ProblemDto })
  deliveries(
    @CurrentPrincipal() user: UserPrincipal,
    @Param('id', new ParseUUIDPipe()) id: string,
  ): Promise<DeliveryDto[]> {
    return this.notifications.deliveries(user, id);
  }
}
