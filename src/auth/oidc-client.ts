import { Inject, Injectable, Logger } from '@nestjs/common';
import * as oidc from 'openid-client';
import { AppConfig } from '../config';

export const OIDC_CONFIGURATION = Symbol('OIDC_CONFIGURATION');

/** openid-client talks https only, unless the issuer is on loopback or this is not production. */
export function insecureAllowed(issuer: URL, config: AppConfig): boolean {
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(issuer.hostname);
  return issuer.protocol === 'http:' && (loopback || !config.isProduction);
}

/** Discovery of the institution's provider, done once while the app boots. */
export async function discoverProvider(config: AppConfig): Promise<oidc.Configuration> {
  if (!config.oidc.issuer) {
    throw new Error('no OIDC issuer: set OIDC_ISSUER (bootstrap starts a development one)');
  }
  const issuer = new URL(config.oidc.issuer);
  const auth = config.oidc.clientSecret
    ? oidc.ClientSecretBasic(config.oidc.clientSecret)
    : oidc.None();
  try {
    return await oidc.discovery(issuer, config.oidc.clientId, undefined, auth, {
      execute: insecureAllowed(issuer, config) ? [oidc.allowInsecureRequests] : [],
      timeout: 10,
    });
  } catch (err) {
    throw new Error(`OIDC discovery at ${issuer.href} failed: ${(err as Error).message}`);
  }
}

export interface LoginStart {
  url: URL;
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** The relying-party side of the login: everything that talks to the identity provider. */
@Injectable()
export class OidcClient {
  private readonly logger = new Logger(OidcClient.name);

  constructor(
    @Inject(OIDC_CONFIGURATION) readonly configuration: oidc.Configuration,
    private readonly config: AppConfig,
  ) {}

  get metadata() {
    return this.configuration.serverMetadata();
  }

  get callbackUrl(): string {
    return `${this.config.publicUrl}/api/v1/auth/callback`;
  }

  async startLogin(): Promise<LoginStart> {
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(this.configuration, {
      redirect_uri: this.callbackUrl,
      scope: this.config.oidc.scopes,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url, state, nonce, codeVerifier };
  }

  /** Exchanges the code; throws openid-client errors when the callback is not genuine. */
  async finishLogin(currentUrl: URL, flow: { state: string; nonce: string; codeVerifier: string }) {
    const tokens = await oidc.authorizationCodeGrant(this.configuration, currentUrl, {
      pkceCodeVerifier: flow.codeVerifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    if (!claims) {
      throw new Error('the provider returned no ID token');
    }
    let userinfo: Record<string, unknown> = {};
    if (this.metadata.userinfo_endpoint && !(this.config.auth.entitlementClaim in claims)) {
      try {
        userinfo = await oidc.fetchUserInfo(this.configuration, tokens.access_token, claims.sub);
      } catch (err) {
        // The ID token alone is enough to sign in; entitlements may then be missing.
        this.logger.warn(`userinfo failed after login: ${(err as Error).message}`);
      }
    }
    return { claims: { ...claims, ...userinfo }, idToken: tokens.id_token };
  }

  async userinfo(accessToken: string): Promise<Record<string, unknown> | undefined> {
    if (!this.metadata.userinfo_endpoint) {
      return undefined;
    }
    return oidc.fetchUserInfo(this.configuration, accessToken, oidc.skipSubjectCheck);
  }

  /** RFC 7662 introspection of an opaque token; undefined when the provider offers none. */
  async introspect(token: string): Promise<oidc.IntrospectionResponse | undefined> {
    if (!this.metadata.introspection_endpoint) {
      return undefined;
    }
    return oidc.tokenIntrospection(this.configuration, token);
  }

  endSessionUrl(idToken: string | undefined, postLogoutRedirect: string): URL | undefined {
    if (!this.metadata.end_session_endpoint) {
      return undefined;
    }
    return oidc.buildEndSessionUrl(this.configuration, {
      post_logout_redirect_uri: postLogoutRedirect,
      ...(idToken ? { id_token_hint: idToken } : {}),
    });
  }
}
