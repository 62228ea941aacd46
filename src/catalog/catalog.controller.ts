import { Body, Controller, Get, Param, Patch } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { CurrentPrincipal, Origin, RequestOrigin, Roles } from '../common/auth.decorators';
import type { UserPrincipal as Principal } from '../common/principal';
import { ProblemDto } from '../common/problem';
import { CatalogService } from './catalog.service';
import { ServiceDto, UpdateServiceDto } from './dto/service.dto';

@ApiTags('services')
@Controller('services')
@ApiUnauthorizedResponse({ type: ProblemDto, description: 'Not signed in, or bad credentials.' })
export class CatalogController {
  constructor(private readonly catalog: CatalogService) {}

  @Get()
  @ApiOperation({
    summary: 'Services the caller may use, with their inputs',
    description: 'Disabled services are listed too, with `enabled: false`.',
  })
  @ApiOkResponse({ type: [ServiceDto] })
  list(@CurrentPrincipal() principal: Principal): Promise<ServiceDto[]> {
    return this.catalog.list(principal);
  }

  @Get(':key')
  @ApiOperation({ summary: 'One service and its interface' })
  @ApiParam({ name: 'key', example: 'float-add' })
  @ApiOkResponse({ type: ServiceDto })
  @ApiNotFoundResponse({ type: ProblemDto, description: 'No such service, or not entitled.' })
  get(@CurrentPrincipal() principal: Principal, @Param('key') key: string): Promise<ServiceDto> {
    return this.catalog.get(key, principal);
  }

  @Patch(':key')
  @Roles('admin')
  @ApiOperation({
    summary: "Enable or disable a service, or set its jobs' priority (audited)",
  })
  @ApiParam({ name: 'key', example: 'float-add' })
  @ApiOkResponse({ type: ServiceDto })
  @ApiBadRequestResponse({ type: ProblemDto, description: 'Invalid body, with field errors.' })
  @ApiNotFoundResponse({ type: ProblemDto, description: 'No such service.' })
  update(
    @CurrentPrincipal() actor: Principal,
    @Param('key') key: string,
    @Body() dto: UpdateServiceDto,
    @Origin() origin: RequestOrigin,
  ): Promise<ServiceDto> {
    return this.catalog.update(key, dto, actor, origin);
  }
}
