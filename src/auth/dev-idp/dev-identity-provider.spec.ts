import { createRemoteJWKSet, importJWK, jwtVerify, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { driveLogin } from '../../../test/support/oidc-login';
import {
  DEV_USERS,
  startDevIdentityProvider,
  type DevIdentityProvider,
  type DevIdpClient,
} from './dev-identity-provider';

const AUDIENCE = 'labgate';
const ENTITLEMENT_CLAIM = 'eduperson_entitlement';
const SCOPE = `openid email profile ${ENTITLEMENT_CLAIM}`;
// Never requested: driveLogin stops at the redirect to it.
const REDIRECT_URI = 'http://127.0.0.1:9/api/v1/auth/callback';
const API_CLIENT: DevIdpClient = {
  client_id: 'labgate',
  client_secret: 'labgate-secret',
  redirect_uris: [REDIRECT_URI],
  token_endpoint_auth_method: 'client_secret_post',
};
const USERINFO_CLIENT: DevIdpClient = {
  client_id: 'userinfo-reader',
  client_secret: 'userinfo-secret',
  redirect_uris: [REDIRECT_URI],
  token_endpoint_auth_method: 'client_secret_post',
  accessTokenFormat: 'opaque',
};
const ADMIN = demoUser('admin');

function demoUser(login: string) {
  const user = DEV_USERS.find((u) => u.login === login);
  if (!user) {
    throw new Error(`no demo user ${login}`);
  }
  return user;
}

describe(startDevIdentityProvider.name, () => {
  let idp: DevIdentityProvider;

  beforeAll(async () => {
    idp = await startDevIdentityProvider({
      audience: AUDIENCE,
      clients: [API_CLIENT, USERINFO_CLIENT],
    });
  });

  afterAll(async () => {
    await idp?.stop();
  });

  function discover(client: DevIdpClient): Promise<oidc.Configuration> {
    return oidc.discovery(new URL(idp.issuer), client.client_id, client.client_secret, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
  }

  async function authorization(config: oidc.Configuration) {
    const pkceCodeVerifier = oidc.randomPKCECodeVerifier();
    const expectedState = oidc.randomState();
    const expectedNonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: SCOPE,
      code_challenge: await oidc.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state: expectedState,
      nonce: expectedNonce,
    });
    return { url, checks: { pkceCodeVerifier, expectedState, expectedNonce } };
  }

  async function signIn(client: DevIdpClient, login: string, password: string) {
    const config = await discover(client);
    const { url, checks } = await authorization(config);
    const callback = await driveLogin(url.href, login, password);
    const tokens = await oidc.authorizationCodeGrant(config, callback, checks);
    return { config, tokens };
  }

  it('publishes discovery with the endpoints an RP and an API need', async () => {
    const response = await fetch(`${idp.issuer}/.well-known/openid-configuration`);
    const metadata = (await response.json()) as Record<string, unknown>;

    expect(response.status).toBe(200);
    expect(metadata).toMatchObject({
      issuer: idp.issuer,
      authorization_endpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\//),
      token_endpoint: expect.any(String),
      jwks_uri: expect.any(String),
      userinfo_endpoint: expect.any(String),
      introspection_endpoint: expect.any(String),
      revocation_endpoint: expect.any(String),
      end_session_endpoint: expect.any(String),
      code_challenge_methods_supported: ['S256'],
    });
    expect(metadata.scopes_supported).toEqual(expect.arrayContaining(SCOPE.split(' ')));
  });

  it('signs the admin in and issues ID token claims and a JWT access token for the audience', async () => {
    const { config, tokens } = await signIn(API_CLIENT, ADMIN.login, ADMIN.password);

    expect(tokens.claims()).toMatchObject({
      iss: idp.issuer,
      sub: ADMIN.sub,
      email: ADMIN.email,
      email_verified: true,
      name: ADMIN.name,
      [ENTITLEMENT_CLAIM]: ADMIN.entitlements,
    });
    const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri ?? ''));
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, {
      issuer: idp.issuer,
      audience: AUDIENCE,
    });
    expect(protectedHeader).toMatchObject({ alg: 'RS256', typ: 'at+jwt' });
    expect(payload).toMatchObject({
      sub: ADMIN.sub,
      client_id: API_CLIENT.client_id,
      email: ADMIN.email,
      name: ADMIN.name,
      [ENTITLEMENT_CLAIM]: ADMIN.entitlements,
    });
    expect(ADMIN.entitlements).toContain('urn:mace:labgate.dev:group:labgate:role=admin#dev-idp');
  });

  it('refuses a wrong password or an unknown login and issues no code', async () => {
    const config = await discover(API_CLIENT);

    const wrongPassword = await authorization(config);
    await expect(driveLogin(wrongPassword.url.href, ADMIN.login, 'wrong')).rejects.toThrow(
      /login refused/,
    );
    const unknownLogin = await authorization(config);
    await expect(driveLogin(unknownLogin.url.href, 'nobody', 'nobody')).rejects.toThrow(
      /login refused/,
    );
  });

  it('rejects an authorization request without PKCE', async () => {
    const config = await discover(API_CLIENT);
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: SCOPE,
      state: oidc.randomState(),
    });

    const callback = await driveLogin(url.href, ADMIN.login, ADMIN.password);

    expect(callback.searchParams.get('error')).toBe('invalid_request');
    expect(callback.searchParams.get('code')).toBeNull();
  });

  it('introspects an opaque access token as active and serves userinfo for it', async () => {
    const user = demoUser('operator');
    const { config, tokens } = await signIn(USERINFO_CLIENT, user.login, user.password);

    const introspection = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(introspection).toMatchObject({
      active: true,
      sub: user.sub,
      client_id: USERINFO_CLIENT.client_id,
      [ENTITLEMENT_CLAIM]: user.entitlements,
    });
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, user.sub);
    expect(userinfo).toMatchObject({
      sub: user.sub,
      email: user.email,
      [ENTITLEMENT_CLAIM]: user.entitlements,
    });
  });

  it('exposes the private key whose public half it publishes, so tests can mint tokens', async () => {
    const key = await importJWK(idp.signingKey, 'RS256');
    const token = await new SignJWT({ [ENTITLEMENT_CLAIM]: [] })
      .setProtectedHeader({ alg: 'RS256', kid: idp.signingKey.kid })
      .setIssuer(idp.issuer)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(key);

    const config = await discover(API_CLIENT);
    const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri ?? ''));
    await expect(jwtVerify(token, jwks, { issuer: idp.issuer })).resolves.toBeDefined();
    expect(idp.signingKey).toMatchObject({ kty: 'RSA', alg: 'RS256', d: expect.any(String) });
  });

  it('closes its port on stop()', async () => {
    const other = await startDevIdentityProvider({ audience: AUDIENCE, clients: [API_CLIENT] });
    const discoveryUrl = `${other.issuer}/.well-known/openid-configuration`;
    try {
      expect((await fetch(discoveryUrl)).status).toBe(200);
    } finally {
      await other.stop();
    }

    await expect(fetch(discoveryUrl)).rejects.toThrow();
  });
});
