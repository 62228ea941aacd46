import {
  Controller,
  Delete,
  Get,
  Body,
  Header,
  Headers,
  Patch,
  HttpCode,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
  Req,
  Res,
  Sse,
  StreamableFile,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBody,
  ApiConflictResponse,
  ApiConsumes,
  ApiCreatedResponse,
  ApiHeader,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiProduces,
  ApiQuery,
  ApiTags,
  ApiBadRequestResponse,
  ApiExtraModels,
  getSchemaPath,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { Observable } from 'rxjs';
import {
  CurrentPrincipal,
  OptionalAuth,
  Origin,
  RequestOrigin,
  Roles,
} from '../common/auth.decorators';
import type { UserPrincipal } from '../common/principal';
import { ProblemDto } from '../common/problem';
import {
  JobDto,
  JobPageDto,
  ListJobsQuery,
  PatchJobDto,
  SubmitJsonDto,
  SubmittedBatchDto,
  SubmittedJobDto,
} from './dto/job.dto';
import { JobFilesService } from './job-files.service';
import { JobStreamService } from './job-stream.service';
import type { JobView } from './job.mapper';
import { Viewer } from './job-viewer.decorator';
import { JobsService, JobViewer } from './jobs.service';
import { VisibleJob, VisibleJobGuard } from './visible-job.guard';

const TICKET_HEADER = { name: 'X-Job-Token', required: false, description: 'The job ticket' };
const TICKET_QUERY = {
  name: 'token',
  required: false,
  description: 'The job ticket (for EventSource)',
};

@ApiTags('jobs')
@ApiExtraModels(SubmittedJobDto, SubmittedBatchDto)
@Controller('jobs')
export class JobsController {
  constructor(
    private readonly jobs: JobsService,
    private readonly files: JobFilesService,
    private readonly stream: JobStreamService,
  ) {}

  @Post()
  @ApiOperation({
    summary: 'Submit a job',
    description:
      'multipart/form-data: a `service` field first, then one field per input (files as file ' +
      'parts, streamed). Or application/json `{service, inputs}` for services without files.',
  })
  @ApiConsumes('multipart/form-data', 'application/json')
  @ApiBody({ type: SubmitJsonDto })
  @ApiCreatedResponse({
    description: 'The job; with `targets`, the batch of one job per device.',
    schema: {
      oneOf: [{ $ref: getSchemaPath(SubmittedJobDto) }, { $ref: getSchemaPath(SubmittedBatchDto) }],
    },
  })
  @ApiBadRequestResponse({
    type: ProblemDto,
    description: 'Unknown, missing, extra or ill-typed inputs.',
  })
  @ApiNotFoundResponse({ type: ProblemDto, description: 'No such service (or not for you).' })
  @ApiPayloadTooLargeResponse({ type: ProblemDto })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description:
      'Same key + same request within 24 h returns the first job; another request → 409.',
  })
  @ApiConflictResponse({
    type: ProblemDto,
    description: 'Idempotency-Key reused for another request.',
  })
  submit(
    @CurrentPrincipal() principal: UserPrincipal,
    @Req() req: Request,
    @Origin() origin: RequestOrigin,
    // Spelled as @ApiHeader names it, so that Swagger documents one header, not two (Nest
    // looks headers up in lower case either way).
    @Headers('Idempotency-Key') idempotencyKey?: string,
  ): Promise<SubmittedJobDto | SubmittedBatchDto> {
    return this.jobs.submit(principal, req, origin, idempotencyKey);
  }

  @Get()
  @ApiOperation({ summary: 'Your jobs (admins: all), newest first' })
  @ApiOkResponse({ type: JobPageDto })
  list(
    @CurrentPrincipal() principal: UserPrincipal,
    @Query() query: ListJobsQuery,
  ): Promise<JobPageDto> {
    return this.jobs.list(principal, query);
  }

  @Post('batches/:batchId/cancel')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Cancel a batch session: every live job, with a stop command to each device',
  })
  @ApiOkResponse({ type: JobPageDto })
  @ApiNotFoundResponse({ type: ProblemDto })
  cancelBatch(
    @Param('batchId', new ParseUUIDPipe()) batchId: string,
    @CurrentPrincipal() principal: UserPrincipal,
  ): Promise<JobPageDto> {
    return this.jobs.cancelBatch(batchId, principal);
  }

  @Patch(':id')
  @Roles('admin')
  @ApiOperation({ summary: "Set a job's priority (admins)" })
  @ApiOkResponse({ type: JobDto })
  @ApiBadRequestResponse({ type: ProblemDto })
  @ApiNotFoundResponse({ type: ProblemDto })
  patch(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() body: PatchJobDto,
    @CurrentPrincipal() principal: UserPrincipal,
    @Origin() origin: RequestOrigin,
  ): Promise<JobDto> {
    return this.jobs.setPriority(id, body.priority, principal, origin);
  }

  @Get(':id')
  @OptionalAuth()
  @ApiOperation({ summary: 'A job: its owner, an admin, or anyone with its ticket' })
  @ApiHeader(TICKET_HEADER)
  @ApiQuery(TICKET_QUERY)
  @ApiOkResponse({ type: JobDto })
  @ApiNotFoundResponse({ type: ProblemDto })
  get(@Param('id', new ParseUUIDPipe()) id: string, @Viewer() viewer: JobViewer): Promise<JobDto> {
    return this.jobs.get(id, viewer);
  }

  @Sse(':id/events')
  @OptionalAuth()
  // The job is found before the stream starts: see VisibleJobGuard.
  @UseGuards(VisibleJobGuard)
  @ApiOperation({
    summary: 'Server-Sent Events: the current state, then every change and progress',
  })
  @ApiHeader(TICKET_HEADER)
  @ApiQuery(TICKET_QUERY)
  @ApiProduces('text/event-stream')
  @ApiNotFoundResponse({ type: ProblemDto })
  events(
    @Param('id', new ParseUUIDPipe()) _id: string,
    @VisibleJob() job: JobView,
  ): Observable<MessageEvent> {
    return this.stream.events(job);
  }

  @Get(':id/log')
  @OptionalAuth()
  @Header('Content-Type', 'text/plain; charset=utf-8')
  @ApiOperation({ summary: 'The end of the job log (stdout and stderr)' })
  @ApiQuery({ name: 'tail', required: false, description: 'Bytes from the end (default 65536)' })
  @ApiQuery({
    name: 'follow',
    required: false,
    description: '1: the whole log, then stream new output until the job ends',
  })
  @ApiHeader(TICKET_HEADER)
  @ApiQuery(TICKET_QUERY)
  @ApiProduces('text/plain')
  @ApiNotFoundResponse({ type: ProblemDto })
  async log(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Viewer() viewer: JobViewer,
    @Res({ passthrough: true }) res: Response,
    @Query('tail') tail?: string,
    @Query('follow') follow?: string,
  ): Promise<StreamableFile> {
    const job = await this.jobs.visible(id, viewer);
    if (follow !== '1' && follow !== 'true') {
      return this.files.log(job, tail);
    }
    const stream = await this.files.follow(job);
    // The status line and headers go out now, not with the first output, which a queued job
    // may not produce for hours: clients and proxies would give up on a silent connection.
    // Nest has set the headers when it pipes the stream into the response.
    res.once('pipe', () => res.flushHeaders());
    return stream;
  }

  @Get(':id/result')
  @OptionalAuth()
  @ApiOperation({ summary: 'The outputs as tar.gz (streamed, with ETag)' })
  @ApiHeader(TICKET_HEADER)
  @ApiQuery(TICKET_QUERY)
  @ApiProduces('application/gzip')
  @ApiOkResponse({ description: 'tar.gz of outputs/' })
  @ApiConflictResponse({ type: ProblemDto, description: 'The job has not succeeded.' })
  @ApiNotFoundResponse({ type: ProblemDto })
  async result(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Viewer() viewer: JobViewer,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<StreamableFile | undefined> {
    return this.files.result(await this.jobs.visible(id, viewer), req, res);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @OptionalAuth()
  @ApiOperation({ summary: 'Cancel a queued or running job (kills its processes)' })
  @ApiHeader(TICKET_HEADER)
  @ApiOkResponse({ type: JobDto })
  @ApiConflictResponse({ type: ProblemDto, description: 'Already finished.' })
  @ApiNotFoundResponse({ type: ProblemDto })
  cancel(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Viewer() viewer: JobViewer,
  ): Promise<JobDto> {
    return this.jobs.cancel(id, viewer);
  }

  @Post(':id/retry')
  @HttpCode(200)
  @OptionalAuth()
  @ApiOperation({ summary: 'Run a failed job again' })
  @ApiHeader(TICKET_HEADER)
  @ApiOkResponse({ type: JobDto })
  @ApiConflictResponse({ type: ProblemDto, description: 'Not failed.' })
  @ApiNotFoundResponse({ type: ProblemDto })
  retry(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Viewer() viewer: JobViewer,
  ): Promise<JobDto> {
    return this.jobs.retry(id, viewer);
  }

  @Delete(':id')
  @HttpCode(204)
  @OptionalAuth()
  @ApiOperation({ summary: "Remove a finished job's files; it becomes expired" })
  @ApiHeader(TICKET_HEADER)
  @ApiNoContentResponse()
  @ApiConflictResponse({ type: ProblemDto, description: 'Still queued or running.' })
  @ApiNotFoundResponse({ type: ProblemDto })
  remove(@Param('id', new ParseUUIDPipe()) id: string, @Viewer() viewer: JobViewer): Promise<void> {
    return this.jobs.remove(id, viewer);
  }
}
