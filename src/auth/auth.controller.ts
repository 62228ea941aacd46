import { Controller, Get, HttpCode, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiFoundResponse,
  ApiNoContentResponse,
  ApiOperation,
  ApiQuery,
  ApiSeeOtherResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
} from '@nestjs/swagger';
import { Throttle, ThrottlerGuard } from '@nestjs/throttler';
import { parse as parseCookies } from 'cookie';
import type { CookieOptions, Request, Response } from 'express';
import { Origin, Public, RequestOrigin } from '../common/auth.decorators';
import { ProblemDto } from '../common/problem';
import { AppConfig } from '../config';
import { LoginService } from './login.service';
import { SESSION_COOKIE } from './sessions.service';

const LOGIN_COOKIE = 'labgate_login';
const AUTH_PATH = '/api/v1/auth';

@ApiTags('auth')
@Controller('auth')
@UseGuards(ThrottlerGuard)
@Throttle({ default: { limit: 30, ttl: 60_000 } })
@ApiTooManyRequestsResponse({ type: ProblemDto, description: 'Too many attempts; wait a minute.' })
export class AuthController {
  constructor(
    private readonly login: LoginService,
    private readonly config: AppConfig,
  ) {}

  /**
   * Secure when the browser talks https to us: PUBLIC_URL says so, or the request came over
   * https — directly, or per X-Forwarded-Proto from a proxy TRUST_PROXY names (`req.secure`
   * believes the header only then).
   */
  private cookie(req: Request, extra: CookieOptions = {}): CookieOptions {
    return {
      httpOnly: true,
      sameSite: 'lax',
      secure: req.secure || this.config.publicUrl.startsWith('https:'),
      ...extra,
    };
  }

  @Public()
  @Get('login')
  @ApiOperation({ summary: 'Start signing in with the institution identity provider' })
  @ApiQuery({ name: 'returnTo', required: false, description: 'A path of this app, e.g. /docs' })
  @ApiFoundResponse({ description: 'Redirect to the identity provider.' })
  @ApiBadRequestResponse({ type: ProblemDto, description: 'returnTo is not a path of this app.' })
  async start(
    @Query('returnTo') returnTo: string | undefined,
    @Req() req: Request,
    @Res() res: Response,
  ) {
    const login = await this.login.start(returnTo);
    res.cookie(LOGIN_COOKIE, login.state, this.cookie(req, { path: AUTH_PATH, maxAge: 600_000 }));
    res.redirect(302, login.redirect);
  }

  @Public()
  @Get('callback')
  @ApiOperation({ summary: 'Where the identity provider sends the browser back' })
  @ApiFoundResponse({ description: 'Signed in: session cookie set, redirect to returnTo.' })
  @ApiBadRequestResponse({ type: ProblemDto, description: 'Forged, replayed or refused login.' })
  async callback(@Req() req: Request, @Res() res: Response, @Origin() origin: RequestOrigin) {
    const query = req.originalUrl.includes('?')
      ? req.originalUrl.slice(req.originalUrl.indexOf('?'))
      : '';
    const browserState = parseCookies(req.headers.cookie ?? '')[LOGIN_COOKIE];
    res.clearCookie(LOGIN_COOKIE, this.cookie(req, { path: AUTH_PATH }));
    const done = await this.login.finish(query, browserState, origin);
    res.cookie(
      SESSION_COOKIE,
      done.sessionSecret,
      this.cookie(req, { path: '/', maxAge: this.config.auth.sessionTtlMs }),
    );
    res.redirect(302, done.redirect);
  }

  @Post('logout')
  @HttpCode(204)
  @ApiOperation({ summary: 'End the session (and the provider session when it offers logout)' })
  @ApiSeeOtherResponse({ description: "Redirect to the identity provider's logout." })
  @ApiNoContentResponse({ description: 'Signed out.' })
  async logout(@Req() req: Request & { user?: { sessionId?: string } }, @Res() res: Response) {
    const next = await this.login.logout(req.user?.sessionId);
    res.clearCookie(SESSION_COOKIE, this.cookie(req, { path: '/' }));
    if (next) {
      res.redirect(303, next);
    } else {
      res.status(204).end();
    }
  }
}
