import {
  Body,
  Controller,
  Get,
  HttpCode,
  Param,
  ParseUUIDPipe,
  Patch,
  Post,
  Put,
  Query,
  Req,
  Res,
  StreamableFile,
} from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiForbiddenResponse,
  ApiGoneResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import {
  CurrentPrincipal,
  OptionalAuth,
  Origin,
  type RequestOrigin,
} from '../common/auth.decorators';
import type { Principal, UserPrincipal } from '../common/principal';
import { ProblemDto } from '../common/problem';
import { ClaimDto } from './dto/claim.dto';
import {
  ClaimResultDto,
  ListResultsQuery,
  PatchResultDto,
  ResultDto,
  ResultPageDto,
  ResultTagsDto,
  SubmitResultDto,
} from './dto/result.dto';
import { ClaimsService } from './claims.service';
import { ResultsService } from './results.service';

const INVALID = { type: ProblemDto, description: 'Invalid input, with field errors.' };
const NOT_FOUND = { type: ProblemDto, description: 'No such result, or not one you may see.' };
const NOT_OWNER = { type: ProblemDto, description: 'Only its owner and admins change it.' };

@ApiTags('results')
@Controller('results')
@ApiUnauthorizedResponse({ type: ProblemDto, description: 'Bad credentials.' })
export class ResultsController {
  constructor(
    private readonly results: ResultsService,
    private readonly claims: ClaimsService,
  ) {}

  @Get()
  @OptionalAuth()
  @ApiOperation({
    summary: 'Search results you may see (public ones without signing in)',
    description:
      'Filters combine (all must hold). `filter=metrics.sum>3` (repeatable) compares a metric; ' +
      '`sort=-metrics.sum` sorts by one. Keyset pagination: pass nextCursor with the same sort.',
  })
  @ApiOkResponse({ type: ResultPageDto })
  @ApiBadRequestResponse(INVALID)
  @ApiForbiddenResponse({ type: ProblemDto, description: "owner= another user's id (non-admins)." })
  list(
    @CurrentPrincipal() principal: Principal | undefined,
    @Query() query: ListResultsQuery,
  ): Promise<ResultPageDto> {
    return this.results.list(principal, query);
  }

  @Post()
  @ApiOperation({
    summary: 'Submit a result of a run done elsewhere (validated against the result schema)',
  })
  @ApiCreatedResponse({ type: ResultDto })
  @ApiBadRequestResponse(INVALID)
  submit(
    @CurrentPrincipal() principal: UserPrincipal,
    @Body() dto: SubmitResultDto,
    @Origin() origin: RequestOrigin,
  ): Promise<ResultDto> {
    return this.results.submit(principal, dto, origin);
  }

  @Get(':id')
  @OptionalAuth()
  @ApiOperation({ summary: 'A result' })
  @ApiOkResponse({ type: ResultDto })
  @ApiNotFoundResponse(NOT_FOUND)
  get(
    @Param('id', new ParseUUIDPipe()) id: string,
    @CurrentPrincipal() principal: Principal | undefined,
  ): Promise<ResultDto> {
    return this.results.get(id, principal);
  }

  @Get(':id/artifacts/*name')
  @OptionalAuth()
  @ApiOperation({
    summary: 'One file of the outputs, streamed out of the archive',
    description:
      'The name as listed in `artifacts` (nested names are paths: `plots/a.png`); each segment ' +
      'URL-encoded, or the whole name with %2F.',
  })
  @ApiParam({ name: 'name', example: 'plots/a.png' })
  @ApiProduces('application/octet-stream')
  @ApiOkResponse({ description: 'The file, with its media type and an ETag.' })
  @ApiNotFoundResponse(NOT_FOUND)
  @ApiGoneResponse({ type: ProblemDto, description: 'The archive is missing from storage.' })
  artifact(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Param('name') name: string | string[],
    @CurrentPrincipal() principal: Principal | undefined,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<StreamableFile | undefined> {
    const path = Array.isArray(name) ? name.join('/') : name;
    return this.results.artifact(id, path, principal, req, res);
  }

  @Put(':id/tags')
  @ApiOperation({ summary: "Replace a result's tags (owner or admin)" })
  @ApiOkResponse({ type: ResultDto })
  @ApiBadRequestResponse(INVALID)
  @ApiForbiddenResponse(NOT_OWNER)
  @ApiNotFoundResponse(NOT_FOUND)
  setTags(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: ResultTagsDto,
    @CurrentPrincipal() principal: UserPrincipal,
    @Origin() origin: RequestOrigin,
  ): Promise<ResultDto> {
    return this.results.setTags(id, dto.tags, principal, origin);
  }

  @Patch(':id')
  @ApiOperation({ summary: "Change a result's visibility (owner or admin)" })
  @ApiOkResponse({ type: ResultDto })
  @ApiBadRequestResponse(INVALID)
  @ApiForbiddenResponse(NOT_OWNER)
  @ApiNotFoundResponse(NOT_FOUND)
  patch(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: PatchResultDto,
    @CurrentPrincipal() principal: UserPrincipal,
    @Origin() origin: RequestOrigin,
  ): Promise<ResultDto> {
    return this.results.setVisibility(id, dto.visibility, principal, origin);
  }

  @Post(':id/claim')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Claim a result should not be there; it is hidden until an admin decides',
  })
  @ApiCreatedResponse({ type: ClaimDto })
  @ApiBadRequestResponse(INVALID)
  @ApiNotFoundResponse(NOT_FOUND)
  @ApiConflictResponse({ type: ProblemDto, description: 'A claim is pending already.' })
  claim(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: ClaimResultDto,
    @CurrentPrincipal() principal: UserPrincipal,
    @Origin() origin: RequestOrigin,
  ): Promise<ClaimDto> {
    return this.claims.claim(id, dto.reason, principal, origin);
  }
}
