import { createHash } from 'node:crypto';
import { Injectable, Logger, UnauthorizedException } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { parse as parseCookies } from 'cookie';
import type { Request } from 'express';
import { errors as joseErrors, JWTPayload } from 'jose';
import type { UserPrincipal } from '../common/principal';
import { AppConfig } from '../config';
import { OidcClient } from './oidc-client';
import { Principals } from './principals';
import { SignedInUsers } from './signed-in-users';
import { SESSION_COOKIE, SessionsService } from './sessions.service';
import { isJwt, TokenVerifier } from './token-verifier';
import { PAT_PREFIX, TokensService } from './tokens.service';
import { IdentityClaims } from './user.repository';
import { User } from './user.entity';

/** Device tokens are checked by the devices module on agent routes, never here. */
const DEVICE_TOKEN_PREFIX = 'lgd_';
const BEARER = /^Bearer\s+(\S+)\s*$/i;
const USERINFO_CACHE_MS = 5 * 60_000;

/** Why a JWT was refused, in words a caller can act on (and nothing more). */
function jwtRefusal(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) {
    return 'The access token has expired.';
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return `The access token's "${err.claim}" claim is not accepted here.`;
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey) {
    return 'The access token is signed with a key the identity provider does not publish.';
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) {
    return 'The access token uses a signing algorithm that is not accepted.';
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return 'The access token signature is invalid.';
  }
  return 'The access token is malformed or cannot be verified.';
}

/**
 * Turns the credentials of a request into a principal: a personal access token or an OIDC
 * access token (JWT, or opaque through introspection) in `Authorization: Bearer`, or a
 * session cookie. Presented but bad credentials are a 401, never a fall-through.
 */
@Injectable()
export class Authenticator {
  private readonly logger = new Logger(Authenticator.name);
  private readonly userinfoCache = new Map<
    string,
    { at: number; claims: Record<string, unknown> }
  >();

  constructor(
    private readonly em: EntityManager,
    private readonly config: AppConfig,
    private readonly oidc: OidcClient,
    private readonly verifier: TokenVerifier,
    private readonly tokens: TokensService,
    private readonly sessions: SessionsService,
    private readonly principals: Principals,
    private readonly signedIn: SignedInUsers,
  ) {}

  async authenticate(req: Request): Promise<UserPrincipal | undefined> {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const match = BEARER.exec(header);
      if (!match) {
        throw new UnauthorizedException('The Authorization header must be "Bearer <token>".');
      }
      return this.fromBearer(match[1]);
    }
    const secret = parseCookies(req.headers.cookie ?? '')[SESSION_COOKIE];
    if (secret) {
      const session = await this.sessions.find(secret);
      if (!session) {
        throw new UnauthorizedException('Your session has ended; sign in again.');
      }
      return this.principals.forUser(this.usable(session.user), 'session', {
        sessionId: session.id,
      });
    }
    return undefined;
  }

  private async fromBearer(token: string): Promise<UserPrincipal> {
    if (token.startsWith(DEVICE_TOKEN_PREFIX)) {
      throw new UnauthorizedException(
        'Device tokens (lgd_…) are accepted on /api/v1/agent routes only; sign in as a user.',
      );
    }
    if (token.startsWith(PAT_PREFIX)) {
      const pat = await this.tokens.find(token);
      if (!pat) {
        throw new UnauthorizedException(
          'This personal access token is unknown, revoked or expired.',
        );
      }
      const principal = await this.principals.forUser(this.usable(pat.user), 'pat', {
        scopes: pat.scopes,
        tokenId: pat.id,
      });
      // A token acts with its owner's elevated roles only when it was given the admin scope.
      return pat.scopes.includes('admin') ? principal : { ...principal, roles: ['user'] };
    }
    const claims = isJwt(token) ? await this.verifyJwt(token) : await this.introspect(token);
    const identity = await this.identityFrom(token, claims);
    // Scripts never pass the login page: each use of an access token counts as a sign-in, so
    // that lastLoginAt shows who still uses labgate (the upsert writes the row anyway).
    const { user, rules } = await this.signedIn.read(identity, () =>
      this.em.fork().getRepository(User).upsertIdentityWithRules(identity, true),
    );
    return this.principals.forUser(this.usable(user), 'bearer', {}, rules);
  }

  private async verifyJwt(token: string): Promise<JWTPayload & { sub: string }> {
    try {
      return await this.verifier.verify(token);
    } catch (err) {
      throw new UnauthorizedException(jwtRefusal(err));
    }
  }

  private async introspect(token: string): Promise<JWTPayload & { sub: string }> {
    let answer;
    try {
      answer = await this.oidc.introspect(token);
    } catch (err) {
      this.logger.warn(`token introspection failed: ${(err as Error).message}`);
      throw new UnauthorizedException('The access token could not be checked with the provider.');
    }
    if (!answer) {
      throw new UnauthorizedException('The access token is not a JWT and cannot be introspected.');
    }
    const audiences = [answer.aud ?? []].flat();
    if (!answer.active || !answer.sub) {
      throw new UnauthorizedException('The access token is not active.');
    }
    if (audiences.length > 0 && !audiences.includes(this.config.oidc.audience)) {
      throw new UnauthorizedException('The access token\'s "aud" claim is not accepted here.');
    }
    return {
      ...answer,
      sub: answer.sub,
      iss: answer.iss ?? this.oidc.metadata.issuer,
    };
  }

  /** Identity from the token; entitlements from userinfo when the token does not carry them. */
  private async identityFrom(
    token: string,
    claims: JWTPayload & { sub: string },
  ): Promise<IdentityClaims> {
    const claimName = this.config.auth.entitlementClaim;
    let source: Record<string, unknown> = claims;
    if (!(claimName in claims)) {
      source = { ...(await this.cachedUserinfo(token)), ...claims };
    }
    return identityOf(claims.iss ?? this.oidc.metadata.issuer, claims.sub, source, claimName);
  }

  private async cachedUserinfo(token: string): Promise<Record<string, unknown>> {
    const key = createHash('sha256').update(token).digest('hex');
    const hit = this.userinfoCache.get(key);
    if (hit && Date.now() - hit.at < USERINFO_CACHE_MS) {
      return hit.claims;
    }
    try {
      const claims = (await this.oidc.userinfo(token)) ?? {};
      if (this.userinfoCache.size > 10_000) {
        this.userinfoCache.clear();
      }
      this.userinfoCache.set(key, { at: Date.now(), claims });
      return claims;
    } catch (err) {
      this.logger.warn(`userinfo failed for a bearer token: ${(err as Error).message}`);
      return {};
    }
  }

  private usable(user: User): User {
    if (user.blocked) {
      throw new UnauthorizedException('This account is blocked; contact the administrators.');
    }
    return user;
  }
}

/** Reads the identity claims labgate keeps from an ID token, userinfo or access token. */
export function identityOf(
  issuer: string,
  subject: string,
  claims: Record<string, unknown>,
  entitlementClaim: string,
): IdentityClaims {
  const raw = claims[entitlementClaim];
  const entitlements =
    raw === undefined ? undefined : [raw].flat().filter((e): e is string => typeof e === 'string');
  return {
    issuer,
    subject,
    email: typeof claims.email === 'string' ? claims.email : undefined,
    name: typeof claims.name === 'string' ? claims.name : undefined,
    entitlements,
  };
}
