import {
  Body,
  Controller,
  Get,
  HttpCode,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
  Req,
  Res,
  StreamableFile,
} from '@nestjs/common';
import {
  ApiBody,
  ApiConflictResponse,
  ApiConsumes,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiProduces,
  ApiBadRequestResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { CurrentDevice } from '../common/auth.decorators';
import type { DevicePrincipal } from '../common/principal';
import { ProblemDto } from '../common/problem';
import { DeviceAuth } from '../devices/device-auth.decorator';
import { AgentJobsService } from './agent-jobs.service';
import {
  AgentCompleteDto,
  AgentFailDto,
  AgentJobStatusDto,
  AgentProgressDto,
  ClaimedJobDto,
  ClaimQuery,
} from './dto/agent-job.dto';

const NOT_YOURS = { type: ProblemDto, description: 'No such job on this device.' };
const NOT_RUNNING = { type: ProblemDto, description: 'The job is no longer running.' };

/** The job routes of the agent protocol (docs/agent-protocol.md); device tokens only. */
@ApiTags('agent')
@DeviceAuth()
@Controller('agent/jobs')
export class AgentJobsController {
  constructor(private readonly agentJobs: AgentJobsService) {}

  @Post('claim')
  @ApiOperation({
    summary: 'Claim the next job placed on this device (long-poll)',
    description: 'Waits up to `wait` seconds; 204 when no job came. The job is then running.',
  })
  @ApiOkResponse({ type: ClaimedJobDto })
  @ApiNoContentResponse({ description: 'No job within the wait.' })
  async claim(
    @CurrentDevice() device: DevicePrincipal,
    @Query() query: ClaimQuery,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<ClaimedJobDto | undefined> {
    const job = await this.agentJobs.claim(device, query.wait, req);
    if (!job) {
      res.status(204);
    } else {
      res.status(200);
    }
    return job;
  }

  @Get(':id/inputs')
  @ApiOperation({ summary: "A claimed job's inputs: inputs.json and inputs/ as tar.gz" })
  @ApiProduces('application/gzip')
  @ApiOkResponse({ schema: { type: 'string', format: 'binary' } })
  @ApiNotFoundResponse(NOT_YOURS)
  @ApiConflictResponse(NOT_RUNNING)
  inputs(
    @CurrentDevice() device: DevicePrincipal,
    @Param('id', new ParseUUIDPipe()) id: string,
  ): Promise<StreamableFile> {
    return this.agentJobs.inputs(device, id);
  }

  @Post(':id/progress')
  @HttpCode(200)
  @ApiOperation({ summary: 'Report progress of a running job' })
  @ApiOkResponse({ type: AgentJobStatusDto })
  @ApiBadRequestResponse({ type: ProblemDto })
  @ApiNotFoundResponse(NOT_YOURS)
  @ApiConflictResponse(NOT_RUNNING)
  progress(
    @CurrentDevice() device: DevicePrincipal,
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() body: AgentProgressDto,
  ): Promise<AgentJobStatusDto> {
    return this.agentJobs.progress(device, id, body.percent, body.message);
  }

  @Post(':id/complete')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Complete a job: metrics, log and result (tar.gz) as multipart',
    description: 'Idempotent: completing a job that already succeeded answers 200 again.',
  })
  @ApiConsumes('multipart/form-data')
  @ApiBody({ type: AgentCompleteDto })
  @ApiOkResponse({ type: AgentJobStatusDto })
  @ApiBadRequestResponse({ type: ProblemDto, description: 'Malformed parts or metrics.' })
  @ApiPayloadTooLargeResponse({ type: ProblemDto })
  @ApiNotFoundResponse(NOT_YOURS)
  @ApiConflictResponse(NOT_RUNNING)
  complete(
    @CurrentDevice() device: DevicePrincipal,
    @Param('id', new ParseUUIDPipe()) id: string,
    @Req() req: Request,
  ): Promise<AgentJobStatusDto> {
    return this.agentJobs.complete(device, id, req);
  }

  @Post(':id/fail')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Report a failed attempt',
    description: 'The job is retried (status queued) while its retry policy allows, else failed.',
  })
  @ApiOkResponse({ type: AgentJobStatusDto })
  @ApiBadRequestResponse({ type: ProblemDto })
  @ApiNotFoundResponse(NOT_YOURS)
  @ApiConflictResponse(NOT_RUNNING)
  fail(
    @CurrentDevice() device: DevicePrincipal,
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() body: AgentFailDto,
  ): Promise<AgentJobStatusDto> {
    return this.agentJobs.fail(device, id, body.reason);
  }
}
