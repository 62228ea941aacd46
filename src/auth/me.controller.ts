import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  ParseUUIDPipe,
  Post,
  UseGuards,
} from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiForbiddenResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { Throttle, ThrottlerGuard } from '@nestjs/throttler';
import { CurrentPrincipal, Origin, RequestOrigin } from '../common/auth.decorators';
import type { UserPrincipal } from '../common/principal';
import { ProblemDto } from '../common/problem';
import { MeDto } from './dto/me.dto';
import { CreatedTokenDto, CreateTokenDto, TokenDto } from './dto/token.dto';
import { TokensService } from './tokens.service';

@ApiTags('me')
@Controller('me')
@ApiUnauthorizedResponse({ type: ProblemDto, description: 'Not signed in, or bad credentials.' })
export class MeController {
  constructor(private readonly tokens: TokensService) {}

  @Get()
  @ApiOperation({ summary: 'The signed-in user, entitlements and effective roles' })
  @ApiOkResponse({ type: MeDto })
  me(@CurrentPrincipal() principal: UserPrincipal): MeDto {
    return {
      id: principal.userId,
      issuer: principal.issuer,
      subject: principal.subject,
      email: principal.email,
      name: principal.name,
      entitlements: principal.entitlements,
      roles: principal.roles,
      authenticatedBy: principal.via,
      scopes: principal.scopes,
    };
  }

  @Post('tokens')
  @UseGuards(ThrottlerGuard)
  @Throttle({ default: { limit: 20, ttl: 60_000 } })
  @ApiOperation({ summary: 'Create a personal access token (shown once)' })
  @ApiCreatedResponse({ type: CreatedTokenDto })
  @ApiForbiddenResponse({ type: ProblemDto, description: 'Tokens cannot create tokens.' })
  createToken(
    @CurrentPrincipal() principal: UserPrincipal,
    @Body() dto: CreateTokenDto,
    @Origin() origin: RequestOrigin,
  ): Promise<CreatedTokenDto> {
    return this.tokens.create(principal, principal.userId, dto, origin);
  }

  @Get('tokens')
  @ApiOperation({ summary: 'Your personal access tokens (never the secrets)' })
  @ApiOkResponse({ type: [TokenDto] })
  listTokens(@CurrentPrincipal() principal: UserPrincipal): Promise<TokenDto[]> {
    return this.tokens.list(principal);
  }

  @Delete('tokens/:id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke one of your personal access tokens' })
  @ApiNoContentResponse({ description: 'Revoked; it stops working at once.' })
  @ApiNotFoundResponse({ type: ProblemDto })
  revokeToken(
    @CurrentPrincipal() principal: UserPrincipal,
    @Param('id', new ParseUUIDPipe()) id: string,
    @Origin() origin: RequestOrigin,
  ): Promise<void> {
    return this.tokens.revoke(principal, id, origin);
  }
}
