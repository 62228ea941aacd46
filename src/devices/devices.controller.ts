import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { CurrentPrincipal, Origin, RequestOrigin, Roles } from '../common/auth.decorators';
import { PageQuery } from '../common/pagination';
import type { UserPrincipal } from '../common/principal';
import { ProblemDto } from '../common/problem';
import { DeviceCommandDto, DeviceCommandPageDto, IssueCommandDto } from './dto/command.dto';
import {
  CreateDeviceDto,
  DeviceDto,
  DevicePageDto,
  DeviceWithTokenDto,
  IdParam,
  ListDevicesQuery,
  UpdateDeviceDto,
} from './dto/device.dto';
import { DeviceCommandsService } from './device-commands.service';
import { DevicesService } from './devices.service';

const INVALID = { type: ProblemDto, description: 'Invalid input, with field errors.' };
const NOT_FOUND = { type: ProblemDto, description: 'No such device.' };

@ApiTags('devices')
@Controller('devices')
@ApiUnauthorizedResponse({ type: ProblemDto, description: 'Not signed in, or bad credentials.' })
export class DevicesController {
  constructor(
    private readonly devices: DevicesService,
    private readonly commands: DeviceCommandsService,
  ) {}

  @Post()
  @Roles('admin')
  @ApiOperation({ summary: 'Register a device; the answer holds its token, shown only once' })
  @ApiCreatedResponse({ type: DeviceWithTokenDto })
  @ApiBadRequestResponse(INVALID)
  @ApiConflictResponse({ type: ProblemDto, description: 'The name is taken.' })
  create(
    @CurrentPrincipal() actor: UserPrincipal,
    @Body() dto: CreateDeviceDto,
    @Origin() origin: RequestOrigin,
  ): Promise<DeviceWithTokenDto> {
    return this.devices.create(actor, dto, origin);
  }

  @Get()
  @Roles('operator')
  @ApiOperation({ summary: 'Devices by name, with their observed state' })
  @ApiOkResponse({ type: DevicePageDto })
  @ApiBadRequestResponse(INVALID)
  list(@Query() query: ListDevicesQuery): Promise<DevicePageDto> {
    return this.devices.list(query);
  }

  @Get(':id')
  @Roles('operator')
  @ApiOperation({ summary: 'A device' })
  @ApiOkResponse({ type: DeviceDto })
  @ApiBadRequestResponse(INVALID)
  @ApiNotFoundResponse(NOT_FOUND)
  get(@Param() { id }: IdParam): Promise<DeviceDto> {
    return this.devices.get(id);
  }

  @Patch(':id')
  @Roles('admin')
  @ApiOperation({ summary: 'Change a device (name, services, slots, labels, admin state, ssh)' })
  @ApiOkResponse({ type: DeviceDto })
  @ApiBadRequestResponse(INVALID)
  @ApiNotFoundResponse(NOT_FOUND)
  @ApiConflictResponse({ type: ProblemDto, description: 'The new name is taken.' })
  update(
    @CurrentPrincipal() actor: UserPrincipal,
    @Param() { id }: IdParam,
    @Body() dto: UpdateDeviceDto,
    @Origin() origin: RequestOrigin,
  ): Promise<DeviceDto> {
    return this.devices.update(actor, id, dto, origin);
  }

  @Delete(':id')
  @Roles('admin')
  @HttpCode(204)
  @ApiOperation({ summary: 'Remove a device that has no active jobs' })
  @ApiNoContentResponse()
  @ApiBadRequestResponse(INVALID)
  @ApiNotFoundResponse(NOT_FOUND)
  @ApiConflictResponse({ type: ProblemDto, description: 'It has active jobs.' })
  remove(
    @CurrentPrincipal() actor: UserPrincipal,
    @Param() { id }: IdParam,
    @Origin() origin: RequestOrigin,
  ): Promise<void> {
    return this.devices.remove(actor, id, origin);
  }

  @Post(':id/rotate-token')
  @Roles('admin')
  @HttpCode(200)
  @ApiOperation({ summary: 'Issue a new token; the old one is refused at once' })
  @ApiOkResponse({ type: DeviceWithTokenDto })
  @ApiBadRequestResponse(INVALID)
  @ApiNotFoundResponse(NOT_FOUND)
  rotateToken(
    @CurrentPrincipal() actor: UserPrincipal,
    @Param() { id }: IdParam,
    @Origin() origin: RequestOrigin,
  ): Promise<DeviceWithTokenDto> {
    return this.devices.rotateToken(actor, id, origin);
  }

  @Post(':id/commands')
  @Roles('operator')
  @ApiOperation({ summary: 'Send a command; its agent gets it with its next heartbeat' })
  @ApiCreatedResponse({ type: DeviceCommandDto })
  @ApiBadRequestResponse(INVALID)
  @ApiNotFoundResponse(NOT_FOUND)
  issueCommand(
    @CurrentPrincipal() actor: UserPrincipal,
    @Param() { id }: IdParam,
    @Body() dto: IssueCommandDto,
    @Origin() origin: RequestOrigin,
  ): Promise<DeviceCommandDto> {
    return this.commands.issueAs(actor, id, dto, origin);
  }

  @Get(':id/commands')
  @Roles('operator')
  @ApiOperation({ summary: 'Commands sent to a device, newest first' })
  @ApiOkResponse({ type: DeviceCommandPageDto })
  @ApiBadRequestResponse(INVALID)
  @ApiNotFoundResponse(NOT_FOUND)
  listCommands(@Param() { id }: IdParam, @Query() query: PageQuery): Promise<DeviceCommandPageDto> {
    return this.commands.list(id, query);
  }
}
