import { Body, Controller, HttpCode, Param, Post } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { CurrentDevice } from '../common/auth.decorators';
import type { DevicePrincipal } from '../common/principal';
import { ProblemDto } from '../common/problem';
import { AckCommandDto, AckReplyDto, HeartbeatDto, HeartbeatReplyDto } from './dto/agent.dto';
import { IdParam } from './dto/device.dto';
import { DeviceAuth } from './device-auth.decorator';
import { DeviceCommandsService } from './device-commands.service';
import { DevicesService } from './devices.service';

/** Liveness and commands of docs/agent-protocol.md; the job routes live in the jobs module. */
@ApiTags('agent')
@Controller('agent')
@DeviceAuth()
export class AgentController {
  constructor(
    private readonly devices: DevicesService,
    private readonly commands: DeviceCommandsService,
  ) {}

  @Post('heartbeat')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Report liveness; the answer carries every command not yet acknowledged',
  })
  @ApiOkResponse({ type: HeartbeatReplyDto })
  @ApiBadRequestResponse({ type: ProblemDto, description: 'Invalid body, with field errors.' })
  heartbeat(
    @CurrentDevice() device: DevicePrincipal,
    @Body() dto: HeartbeatDto,
  ): Promise<HeartbeatReplyDto> {
    return this.devices.heartbeat(device, dto);
  }

  @Post('commands/:id/ack')
  @HttpCode(200)
  @ApiOperation({ summary: 'Acknowledge a command (ok: false marks it failed); idempotent' })
  @ApiOkResponse({ type: AckReplyDto })
  @ApiBadRequestResponse({ type: ProblemDto, description: 'Invalid body, with field errors.' })
  @ApiNotFoundResponse({ type: ProblemDto, description: 'No such command for this device.' })
  ack(
    @CurrentDevice() device: DevicePrincipal,
    @Param() { id }: IdParam,
    @Body() dto: AckCommandDto,
  ): Promise<AckReplyDto> {
    return this.commands.ack(device, id, dto);
  }
}
