import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { Server } from 'node:http';
import { base64url } from 'jose';
import * as oidc from 'openid-client';
import request from 'supertest';
import { bearer, demoUser, mintAccessToken } from '../support/auth';
import { queryRows } from '../support/database';
import { driveLogin } from '../support/oidc-login';
import { waitUntil } from '../support/recovery';
import { startTestApp, TestApp } from '../support/test-app';

const OPAQUE_CLIENT = 'opaque-client';

/** A real access token from the provider: authorization code + PKCE, as a script would. */
async function providerToken(app: TestApp, clientId: string, redirectUri: string, login = 'admin') {
  const issuer = new URL(app.idp.issuer);
  const config = await oidc.discovery(issuer, clientId, undefined, oidc.None(), {
    execute: [oidc.allowInsecureRequests],
  });
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email profile eduperson_entitlement',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  });
  const user = demoUser(login as 'admin');
  const callback = await driveLogin(url.href, user.login, user.password);
  const tokens = await oidc.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedState: state,
  });
  return tokens.access_token;
}

function expect401(res: request.Response, detail: RegExp) {
  expect(res.status).toBe(401);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body.detail).toMatch(detail);
}

describe('bearer access tokens', () => {
  let app: TestApp;
  let http: Server;

  beforeAll(async () => {
    app = await startTestApp({ ADMIN_ENTITLEMENTS: demoUser('admin').entitlements[1] }, undefined, {
      extraClients: [
        {
          client_id: OPAQUE_CLIENT,
          token_endpoint_auth_method: 'none',
          redirect_uris: ['http://127.0.0.1/opaque-callback'],
          accessTokenFormat: 'opaque',
        },
      ],
    });
    http = app.app.getHttpServer();
  });
  afterAll(() => app.close());

  it('accepts an access token issued by the provider (Swagger UI client, PKCE)', async () => {
    const token = await providerToken(
      app,
      app.config.oidc.swaggerClientId,
      `${app.config.publicUrl}/docs/oauth2-redirect.html`,
    );
    const me = await request(http).get('/api/v1/me').set(bearer(token)).expect(200);
    expect(me.body).toMatchObject({
      subject: 'dev-admin',
      email: 'admin@labgate.dev',
      roles: ['user', 'operator', 'admin'],
      authenticatedBy: 'bearer',
    });
  });

  it('accepts an opaque token after introspection', async () => {
    const token = await providerToken(
      app,
      OPAQUE_CLIENT,
      'http://127.0.0.1/opaque-callback',
      'user',
    );
    expect(token.split('.')).toHaveLength(1);
    const me = await request(http).get('/api/v1/me').set(bearer(token)).expect(200);
    expect(me.body).toMatchObject({ subject: 'dev-user', authenticatedBy: 'bearer' });
  });

  it('refuses an opaque token the provider does not know', async () => {
    const res = await request(http).get('/api/v1/me').set(bearer('not-a-real-token'));
    expect401(res, /not active/);
  });

  it('accepts a valid JWT and creates the user from its claims', async () => {
    const token = await mintAccessToken(app, { sub: 'fresh-subject', email: 'fresh@x.org' });
    const me = await request(http).get('/api/v1/me').set(bearer(token)).expect(200);
    expect(me.body).toMatchObject({ subject: 'fresh-subject', email: 'fresh@x.org' });
    expect(me.body.roles).toEqual(['user']);
  });

  it('writes the user only when the claims changed or the last sign-in is a minute old', async () => {
    const version = async () =>
      (
        await queryRows<{ xmin: string; email: string }>(
          app.database.url,
          `select xmin::text, email from app_user where subject = 'quiet-subject'`,
        )
      )[0];
    const call = async (email: string) =>
      request(http)
        .get('/api/v1/me')
        .set(bearer(await mintAccessToken(app, { sub: 'quiet-subject', email })))
        .expect(200);
    await call('quiet@x.org');
    const first = await version();
    await call('quiet@x.org');
    await call('quiet@x.org');
    // No new row version: the repeated calls read the user and wrote nothing.
    expect(await version()).toEqual(first);
    await call('moved@x.org');
    const moved = await version();
    expect(moved.email).toBe('moved@x.org');
    expect(moved.xmin).not.toBe(first.xmin);
    await queryRows(
      app.database.url,
      `update app_user set last_login_at = now() - interval '2 minutes' where subject = 'quiet-subject'`,
    );
    const aged = await version();
    // Changed behind the API's back: it applies once PostgreSQL has notified it (the row a
    // bearer request reads is kept in memory until then).
    const refreshed = await waitUntil('the aged sign-in to be refreshed', async () => {
      await call('moved@x.org');
      const [row] = await queryRows<{ recent: boolean; xmin: string }>(
        app.database.url,
        `select xmin::text, last_login_at > now() - interval '10 seconds' as recent
           from app_user where subject = 'quiet-subject'`,
      );
      return row.recent && row;
    });
    expect(refreshed.xmin).not.toBe(aged.xmin);
  });

  it('refuses an expired token', async () => {
    const exp = Math.floor(Date.now() / 1000) - 3600;
    const res = await request(http)
      .get('/api/v1/me')
      .set(bearer(await mintAccessToken(app, { exp })));
    expect401(res, /expired/);
  });

  it('refuses a token from another issuer', async () => {
    const token = await mintAccessToken(app, { iss: 'https://evil.example.com' });
    expect401(await request(http).get('/api/v1/me').set(bearer(token)), /"iss" claim/);
  });

  it('refuses a token for another audience', async () => {
    const token = await mintAccessToken(app, { aud: 'someone-else' });
    expect401(await request(http).get('/api/v1/me').set(bearer(token)), /"aud" claim/);
  });

  it('refuses a token signed with a key the provider does not publish (unknown kid)', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const token = await mintAccessToken(app, {}, { key: privateKey, kid: 'not-published' });
    expect401(
      await request(http).get('/api/v1/me').set(bearer(token)),
      /key the identity provider/,
    );
  });

  it('refuses alg "none"', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url.encode(
      JSON.stringify({
        iss: app.idp.issuer,
        aud: app.config.oidc.audience,
        sub: 'dev-admin',
        exp: Math.floor(Date.now() / 1000) + 300,
      }),
    );
    const res = await request(http)
      .get('/api/v1/me')
      .set(bearer(`${header}.${payload}.`));
    expect401(res, /algorithm|malformed/);
  });

  it('refuses a tampered token (claims changed after signing)', async () => {
    const token = await mintAccessToken(app);
    const [h, , s] = token.split('.');
    const forged = base64url.encode(
      JSON.stringify({
        iss: app.idp.issuer,
        aud: app.config.oidc.audience,
        sub: 'dev-admin',
        eduperson_entitlement: demoUser('admin').entitlements,
        exp: Math.floor(Date.now() / 1000) + 300,
      }),
    );
    expect401(
      await request(http)
        .get('/api/v1/me')
        .set(bearer(`${h}.${forged}.${s}`)),
      /signature/,
    );
  });

  it('refuses HS256 signed with the provider public key as the HMAC secret', async () => {
    const publicPem = createPublicKey({ key: app.idp.signingKey as never, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    });
    const token = await mintAccessToken(app, {}, { alg: 'HS256', key: Buffer.from(publicPem) });
    expect401(await request(http).get('/api/v1/me').set(bearer(token)), /algorithm/);
  });

  it('refuses an Authorization header that is not Bearer', async () => {
    const res = await request(http)
      .get('/api/v1/me')
      .set('Authorization', 'Basic YWRtaW46YWRtaW4=');
    expect401(res, /must be "Bearer <token>"/);
  });
});
