import { Body, Controller, Get, Param, Patch, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { CurrentPrincipal, Origin, RequestOrigin, Roles } from '../common/auth.decorators';
import type { UserPrincipal } from '../common/principal';
import { ProblemDto } from '../common/problem';
import {
  AdminUserDto,
  AdminUserPageDto,
  ListUsersQuery,
  UpdateUserDto,
  UserIdParam,
} from './dto/user.dto';
import { AdminUsersService } from './users.service';

const INVALID = { type: ProblemDto, description: 'Invalid input, with field errors.' };
const NOT_FOUND = { type: ProblemDto, description: 'No such user.' };

@ApiTags('admin')
@Controller('admin/users')
@Roles('admin')
@ApiUnauthorizedResponse({ type: ProblemDto, description: 'Not signed in, or bad credentials.' })
export class AdminUsersController {
  constructor(private readonly users: AdminUsersService) {}

  @Get()
  @ApiOperation({ summary: 'Users, newest first: search, role and blocked filters' })
  @ApiOkResponse({ type: AdminUserPageDto })
  @ApiBadRequestResponse(INVALID)
  list(@Query() query: ListUsersQuery): Promise<AdminUserPageDto> {
    return this.users.list(query);
  }

  @Get(':id')
  @ApiOperation({ summary: 'A user, with roles and last sign-in' })
  @ApiOkResponse({ type: AdminUserDto })
  @ApiBadRequestResponse(INVALID)
  @ApiNotFoundResponse(NOT_FOUND)
  get(@Param() { id }: UserIdParam): Promise<AdminUserDto> {
    return this.users.get(id);
  }

  @Patch(':id')
  @ApiOperation({
    summary: 'Block or unblock a user',
    description:
      "A blocked user's sessions, personal access tokens and bearer tokens are refused from " +
      'the next request on; unblocking restores them. Audited as user.block / user.unblock.',
  })
  @ApiOkResponse({ type: AdminUserDto })
  @ApiBadRequestResponse(INVALID)
  @ApiNotFoundResponse(NOT_FOUND)
  @ApiConflictResponse({ type: ProblemDto, description: 'An admin cannot block themself.' })
  update(
    @CurrentPrincipal() actor: UserPrincipal,
    @Param() { id }: UserIdParam,
    @Body() dto: UpdateUserDto,
    @Origin() origin: RequestOrigin,
  ): Promise<AdminUserDto> {
    return this.users.setBlocked(actor, id, dto.blocked, origin);
  }
}
