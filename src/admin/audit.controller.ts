import { Controller, Get, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { Roles } from '../common/auth.decorators';
import { ProblemDto } from '../common/problem';
import { AuditLogService } from './audit-log.service';
import { AuditedActionDto, AuditEventPageDto, ListAuditQuery } from './dto/audit.dto';

@ApiTags('admin')
@Controller('admin/audit')
@Roles('admin')
@ApiUnauthorizedResponse({ type: ProblemDto, description: 'Not signed in, or bad credentials.' })
export class AuditController {
  constructor(private readonly log: AuditLogService) {}

  @Get()
  @ApiOperation({
    summary: 'The audit log, newest first: who did what to which object, when, from where',
    description: 'Append-only: PostgreSQL refuses to change or delete its rows.',
  })
  @ApiOkResponse({ type: AuditEventPageDto })
  @ApiBadRequestResponse({ type: ProblemDto, description: 'Invalid filter, with field errors.' })
  list(@Query() query: ListAuditQuery): Promise<AuditEventPageDto> {
    return this.log.list(query);
  }

  @Get('actions')
  @ApiOperation({ summary: 'Every audited action, with the kind of object it names' })
  @ApiOkResponse({ type: [AuditedActionDto] })
  actions(): AuditedActionDto[] {
    return this.log.actions();
  }
}
