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

/**
 * Verifies OIDC access tokens that are JWTs: signature against the issuer's JWKS (cached by
 * jose, refetched when an unknown `kid` shows up), issuer, audience, exp/nbf with skew.
 */
@Injectable()
export class TokenVerifier {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;

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

  async verify(token: string): Promise<JWTPayload & { sub: string }> {
    const { payload } = await jwtVerify(token, this.jwks, {
      issuer: this.oidc.metadata.issuer,
      audience: this.config.oidc.audience,
      algorithms: ALLOWED_ALGORITHMS,
      clockTolerance: this.config.oidc.clockSkewSeconds,
      requiredClaims: ['sub', 'exp'],
    });
    return payload as JWTPayload & { sub: string };
  }
}
