import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  ParseUUIDPipe,
  Post,
} from '@nestjs/common';
import {
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
import type { UserPrincipal as Principal } from '../common/principal';
import { ProblemDto } from '../common/problem';
import { CreateEntitlementRuleDto, EntitlementRuleDto } from './dto/entitlement-rule.dto';
import { EntitlementRulesService } from './entitlement-rules.service';

/** Admin API over the rules; it lives with auth because roles are computed from them here. */
@ApiTags('admin')
@Controller('admin/entitlement-rules')
@Roles('admin')
@ApiUnauthorizedResponse({ type: ProblemDto })
export class EntitlementRulesController {
  constructor(private readonly rules: EntitlementRulesService) {}

  @Get()
  @ApiOperation({ summary: 'Rules mapping entitlements to roles' })
  @ApiOkResponse({ type: [EntitlementRuleDto] })
  list(): Promise<EntitlementRuleDto[]> {
    return this.rules.list();
  }

  @Post()
  @ApiOperation({ summary: 'Grant a role to users with a matching entitlement' })
  @ApiCreatedResponse({ type: EntitlementRuleDto })
  @ApiConflictResponse({ type: ProblemDto, description: 'The same rule exists.' })
  create(
    @CurrentPrincipal() actor: Principal,
    @Body() dto: CreateEntitlementRuleDto,
    @Origin() origin: RequestOrigin,
  ): Promise<EntitlementRuleDto> {
    return this.rules.create(actor, dto, origin);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Remove a rule' })
  @ApiNoContentResponse()
  @ApiNotFoundResponse({ type: ProblemDto })
  remove(
    @CurrentPrincipal() actor: Principal,
    @Param('id', new ParseUUIDPipe()) id: string,
    @Origin() origin: RequestOrigin,
  ): Promise<void> {
    return this.rules.remove(actor, id, origin);
  }
}
