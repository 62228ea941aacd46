import { BadGatewayException, HttpStatus, Injectable, Logger } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import * as oidc from 'openid-client';
import { AuditService } from '../audit/audit.service';
import type { RequestOrigin } from '../common/auth.decorators';
import { ProblemException } from '../common/problem';
import { AppConfig } from '../config';
import { identityOf } from './authenticator';
import { LoginFlow } from './login-flow.entity';
import { OidcClient } from './oidc-client';
import { Principals } from './principals';
import { safeReturnTo } from './return-to';
import { SessionsService } from './sessions.service';
import { User } from './user.entity';

const FLOW_TTL_MS = 10 * 60_000;

export interface StartedLogin {
  redirect: string;
  state: string;
}

export interface FinishedLogin {
  redirect: string;
  sessionSecret: string;
}

/** Browser login: authorization code + PKCE, with state and nonce, against the provider. */
@Injectable()
export class LoginService {
  private readonly logger = new Logger(LoginService.name);

  constructor(
    private readonly em: EntityManager,
    private readonly config: AppConfig,
    private readonly oidc: OidcClient,
    private readonly sessions: SessionsService,
    private readonly principals: Principals,
    private readonly audit: AuditService,
  ) {}

  async start(returnTo: string | undefined): Promise<StartedLogin> {
    const target = safeReturnTo(returnTo, this.config.publicUrl);
    if (!target) {
      throw new ProblemException(
        HttpStatus.BAD_REQUEST,
        'returnTo must be a path of this app, such as /docs.',
        {
          errors: [{ field: 'returnTo', message: 'returnTo must be a relative path of this app' }],
        },
      );
    }
    const login = await this.oidc.startLogin();
    const em = this.em.fork();
    // Abandoned logins are cleared here rather than by a timer: each start sweeps the old ones.
    await em.nativeDelete(LoginFlow, { createdAt: { $lt: new Date(Date.now() - FLOW_TTL_MS) } });
    em.create(LoginFlow, {
      state: login.state,
      nonce: login.nonce,
      codeVerifier: login.codeVerifier,
      returnTo: target,
      createdAt: new Date(),
    });
    await em.flush();
    return { redirect: login.url.href, state: login.state };
  }

  async finish(
    callbackQuery: string,
    browserState: string | undefined,
    origin: RequestOrigin,
  ): Promise<FinishedLogin> {
    const currentUrl = new URL(`${this.oidc.callbackUrl}${callbackQuery}`);
    const state = currentUrl.searchParams.get('state');
    const refused = (detail: string) =>
      new ProblemException(HttpStatus.BAD_REQUEST, detail, { type: 'urn:labgate:problem:login' });
    if (currentUrl.searchParams.has('error')) {
      const reason =
        currentUrl.searchParams.get('error_description') ?? currentUrl.searchParams.get('error');
      throw refused(`The identity provider refused the login: ${reason}.`);
    }
    if (!state || state !== browserState) {
      throw refused(
        'This login was not started in this browser; start again at /api/v1/auth/login.',
      );
    }
    const em = this.em.fork();
    const flow = await em.findOne(LoginFlow, { state });
    if (!flow || Date.now() - flow.createdAt.getTime() > FLOW_TTL_MS) {
      throw refused(
        'This login is unknown, expired or already used; start again at /api/v1/auth/login.',
      );
    }
    // Single use: a replayed callback finds nothing, whatever happens next.
    await em.nativeDelete(LoginFlow, { state });

    let result;
    try {
      result = await this.oidc.finishLogin(currentUrl, flow);
    } catch (err) {
      if (err instanceof oidc.ResponseBodyError || err instanceof oidc.AuthorizationResponseError) {
        throw refused(`The identity provider did not accept the login: ${err.error}.`);
      }
      if (err instanceof TypeError || (err as { code?: string }).code === 'OAUTH_TIMEOUT') {
        this.logger.error(`identity provider unreachable: ${(err as Error).message}`);
        throw new BadGatewayException('The identity provider cannot be reached; try again later.');
      }
      throw refused(`The login response is not valid: ${(err as Error).message}.`);
    }
    const { claims, idToken } = result;
    const identity = identityOf(
      String(claims.iss),
      String(claims.sub),
      claims,
      this.config.auth.entitlementClaim,
    );
    const user = await em.getRepository(User).upsertIdentity(identity, true);
    if (user.blocked) {
      // No session for a blocked account: every request with it would be refused anyway.
      throw new ProblemException(
        HttpStatus.FORBIDDEN,
        'This account is blocked; contact the administrators.',
      );
    }
    const { secret, session } = await this.sessions.create(user, idToken);
    const principal = await this.principals.forUser(user, 'session', { sessionId: session.id });
    this.audit.record(
      { actor: principal, action: 'auth.login', targetType: 'user', targetId: user.id, origin },
      em,
    );
    await em.flush();
    return { redirect: flow.returnTo, sessionSecret: secret };
  }

  /** Ends the session; returns where to send the browser (the provider's logout, if any). */
  async logout(sessionId: string | undefined): Promise<string | undefined> {
    const idToken = sessionId ? await this.sessions.end(sessionId) : undefined;
    return this.oidc.endSessionUrl(idToken, `${this.config.publicUrl}/docs`)?.href;
  }
}
