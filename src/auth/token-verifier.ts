import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { createRemoteJWKSet, JWTPayload, jwtVerify } from 'jose';
import { AppConfig } from '../config';
import { OidcClient } from './oidc-client';

/** Asymmetric algorithms only: never `none`, never an HMAC keyed with a public key. */
export const ALLOWED_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
];

/** Looks like a JWS compact serialisation (three base64url parts). */
export function isJwt(token: string): boolean {
  return /^[\w-]+\.[\w-]+\.[\w-]*$/.test(token);
}

/** How long a verified token is taken without checking its signature again (at most). */
export const VERIFIED_TOKEN_TTL_MS = 60_000;
const VERIFIED_TOKENS_KEPT = 10_000;

type Claims = JWTPayload & { sub: string };

/**
 * Verifies OIDC access tokens that are JWTs: signature against the issuer's JWKS (cached by
 * jose, refetched when an unknown `kid` shows up), issuer, audience, exp/nbf with skew.
 *
 * A script sends the same token with every call: a token verified in the last minute is taken
 * again without checking its signature (its bytes are what was verified), until its `exp`
 * (with the clock skew allowed) at the latest. A repeated check within the minute would
 * answer the same anyway: jose keeps the provider's key set for longer than that.
 */
@Injectable()
export class TokenVerifier {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;
  private readonly verified = new Map<string, { claims: Claims; until: number }>();

  constructor(
    private readonly oidc: OidcClient,
    private readonly config: AppConfig,
  ) {
    const jwksUri = oidc.metadata.jwks_uri;
    if (!jwksUri) {
      throw new Error('the OIDC provider publishes no jwks_uri');
    }
    this.jwks = createRemoteJWKSet(new URL(jwksUri), { cooldownDuration: 10_000 });
  }

  async verify(token: string): Promise<Claims> {
    const key = createHash('sha256').update(token).digest('base64');
    const now = Date.now();
    const hit = this.verified.get(key);
    if (hit && now < hit.until) {
      return hit.claims;
    }
    this.verified.delete(key);
    const claims = await this.check(token);
    const expires = (claims.exp! + this.config.oidc.clockSkewSeconds) * 1000;
    if (this.verified.size >= VERIFIED_TOKENS_KEPT) {
      // The oldest goes (a Map keeps insertion order).
      this.verified.delete(this.verified.keys().next().value!);
    }
    this.verified.set(key, { claims, until: Math.min(expires, now + VERIFIED_TOKEN_TTL_MS) });
    return claims;
  }

  private async check(token: string): Promise<Claims> {
    const { payload } = await jwtVerify(token, this.jwks, {
      issuer: this.oidc.metadata.issuer,
      audience: this.config.oidc.audience,
      algorithms: ALLOWED_ALGORITHMS,
      clockTolerance: this.config.oidc.clockSkewSeconds,
      requiredClaims: ['sub', 'exp'],
    });
    return payload as Claims;
  }
}
