import { Body, Controller, Get, HttpCode, Param, ParseUUIDPipe, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { CurrentPrincipal, Origin, type RequestOrigin, Roles } from '../common/auth.decorators';
import type { UserPrincipal } from '../common/principal';
import { ProblemDto } from '../common/problem';
import { ClaimDto, ClaimPageDto, DecideClaimDto, ListClaimsQuery } from './dto/claim.dto';
import { ClaimsService } from './claims.service';

const NOT_FOUND = { type: ProblemDto, description: 'No such claim.' };
const DECIDED = { type: ProblemDto, description: 'The claim is not pending.' };

@ApiTags('admin')
@Controller('admin/claims')
@Roles('admin')
@ApiUnauthorizedResponse({ type: ProblemDto, description: 'Not signed in, or bad credentials.' })
export class ClaimsController {
  constructor(private readonly claims: ClaimsService) {}

  @Get()
  @ApiOperation({ summary: 'Claims on results, oldest first (default: pending ones)' })
  @ApiOkResponse({ type: ClaimPageDto })
  @ApiBadRequestResponse({ type: ProblemDto })
  list(@Query() query: ListClaimsQuery): Promise<ClaimPageDto> {
    return this.claims.list(query);
  }

  @Post(':id/approve')
  @HttpCode(200)
  @ApiOperation({ summary: 'Approve a claim: the result is removed' })
  @ApiOkResponse({ type: ClaimDto })
  @ApiNotFoundResponse(NOT_FOUND)
  @ApiConflictResponse(DECIDED)
  approve(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: DecideClaimDto,
    @CurrentPrincipal() admin: UserPrincipal,
    @Origin() origin: RequestOrigin,
  ): Promise<ClaimDto> {
    return this.claims.decide(id, true, admin, origin, dto.note);
  }

  @Post(':id/reject')
  @HttpCode(200)
  @ApiOperation({ summary: 'Reject a claim: the result is published again' })
  @ApiOkResponse({ type: ClaimDto })
  @ApiNotFoundResponse(NOT_FOUND)
  @ApiConflictResponse(DECIDED)
  reject(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Body() dto: DecideClaimDto,
    @CurrentPrincipal() admin: UserPrincipal,
    @Origin() origin: RequestOrigin,
  ): Promise<ClaimDto> {
    return this.claims.decide(id, false, admin, origin, dto.note);
  }
}
