import type { Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { demoUser, loginAs } from '../support/auth';
import { driveLogin } from '../support/oidc-login';
import { startTestApp, TestApp } from '../support/test-app';

function expectProblem(res: request.Response, status: number) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
}

describe('browser login through the institution provider', () => {
  let app: TestApp;
  let http: Server;

  beforeAll(async () => {
    app = await startTestApp({ ADMIN_ENTITLEMENTS: demoUser('admin').entitlements[1] });
    http = app.app.getHttpServer();
  });
  afterAll(() => app.close());

  it('signs in through the login and consent pages and sets a safe session cookie', async () => {
    const { cookie, redirect, setCookie } = await loginAs(http, 'admin', '/docs?x=1');
    expect(redirect).toBe('/docs?x=1');
    const session = ([] as string[])
      .concat(setCookie)
      .find((c) => c.startsWith('labgate_session='))!;
    expect(session).toMatch(/HttpOnly/i);
    expect(session).toMatch(/SameSite=Lax/i);
    expect(session).not.toMatch(/Secure/i); // plain http on loopback

    const me = await request(http).get('/api/v1/me').set('Cookie', cookie).expect(200);
    expect(me.body).toMatchObject({
      issuer: app.idp.issuer,
      subject: 'dev-admin',
      email: 'admin@labgate.dev',
      name: 'Ada Admin',
      entitlements: demoUser('admin').entitlements,
      roles: ['user', 'operator', 'admin'],
      authenticatedBy: 'session',
    });
  });

  it('keeps one user per (issuer, sub) across logins and records the login in the audit log', async () => {
    await loginAs(http, 'user');
    await loginAs(http, 'user');
    const db = new Client({ connectionString: app.database.url });
    await db.connect();
    try {
      const users = await db.query(`select id from app_user where subject = 'dev-user'`);
      expect(users.rowCount).toBe(1);
      const audit = await db.query(
        `select count(*)::int as n from audit_event where action = 'auth.login' and actor_id = $1`,
        [users.rows[0].id],
      );
      expect(audit.rows[0].n).toBe(2);
    } finally {
      await db.end();
    }
  });

  it('gives a plain user the user role only', async () => {
    const { cookie } = await loginAs(http, 'user');
    const me = await request(http).get('/api/v1/me').set('Cookie', cookie).expect(200);
    expect(me.body.roles).toEqual(['user']);
  });

  it('refuses the callback when replayed', async () => {
    const start = await request(http).get('/api/v1/auth/login').expect(302);
    const flow = (start.headers['set-cookie'] as unknown as string[])[0].split(';')[0];
    const callback = await driveLogin(start.headers.location, 'user', 'user');
    const path = `${callback.pathname}${callback.search}`;
    await request(http).get(path).set('Cookie', flow).expect(302);
    const replay = await request(http).get(path).set('Cookie', flow);
    expectProblem(replay, 400);
    expect(replay.body.detail).toMatch(/unknown, expired or already used/);
  });

  it('refuses a callback that this browser did not start (state mismatch, login CSRF)', async () => {
    const start = await request(http).get('/api/v1/auth/login').expect(302);
    const callback = await driveLogin(start.headers.location, 'user', 'user');
    const res = await request(http)
      .get(`${callback.pathname}${callback.search}`)
      .set('Cookie', 'labgate_login=somebody-elses-state');
    expectProblem(res, 400);
    expect(res.body.detail).toMatch(/not started in this browser/);
  });

  it('refuses a forged code with a genuine state as a 400, not a 500', async () => {
    const start = await request(http).get('/api/v1/auth/login').expect(302);
    const flow = (start.headers['set-cookie'] as unknown as string[])[0].split(';')[0];
    const state = new URL(start.headers.location).searchParams.get('state')!;
    const res = await request(http)
      .get('/api/v1/auth/callback')
      .query({ code: 'forged-code', state, iss: app.idp.issuer })
      .set('Cookie', flow);
    expectProblem(res, 400);
    expect(res.body.detail).toMatch(/did not accept the login/);
  });

  it('reports a login the provider refused', async () => {
    const res = await request(http)
      .get('/api/v1/auth/callback')
      .query({ error: 'access_denied', error_description: 'End-User aborted interaction' });
    expectProblem(res, 400);
    expect(res.body.detail).toMatch(/refused the login: End-User aborted interaction/);
  });

  it.each(['https://evil.example.com/', '//evil.example.com', '/\\evil.example.com'])(
    'refuses returnTo=%s (no open redirect)',
    async (returnTo) => {
      const res = await request(http).get('/api/v1/auth/login').query({ returnTo });
      expectProblem(res, 400);
      expect(res.headers.location).toBeUndefined();
      expect(res.body.errors).toEqual([
        { field: 'returnTo', message: 'returnTo must be a relative path of this app' },
      ]);
    },
  );

  it('logs out: the session stops working and the browser goes to the provider logout', async () => {
    const { cookie } = await loginAs(http, 'user');
    const out = await request(http).post('/api/v1/auth/logout').set('Cookie', cookie).expect(303);
    const target = new URL(out.headers.location);
    expect(target.origin).toBe(app.idp.issuer);
    expect(target.searchParams.get('id_token_hint')).toBeTruthy();
    const after = await request(http).get('/api/v1/me').set('Cookie', cookie);
    expectProblem(after, 401);
  });

  it('answers an anonymous call to a protected route with 401 and WWW-Authenticate', async () => {
    const res = await request(http).get('/api/v1/me');
    expectProblem(res, 401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
  });
});

describe('with no ADMIN_ENTITLEMENTS configured', () => {
  it('makes nobody admin, not even the provider demo admin', async () => {
    const app = await startTestApp();
    try {
      const http = app.app.getHttpServer();
      const { cookie } = await loginAs(http, 'admin');
      const me = await request(http).get('/api/v1/me').set('Cookie', cookie).expect(200);
      expect(me.body.roles).toEqual(['user']);
    } finally {
      await app.close();
    }
  });
});

describe('abuse of the login endpoints', () => {
  it('is rate limited per client with a 429 problem', async () => {
    const app = await startTestApp();
    try {
      const http = app.app.getHttpServer();
      const statuses: number[] = [];
      for (let i = 0; i < 32; i++) {
        statuses.push((await request(http).get('/api/v1/auth/login')).status);
      }
      expect(statuses.slice(0, 30).every((s) => s === 302)).toBe(true);
      const limited = await request(http).get('/api/v1/auth/login');
      expectProblem(limited, 429);
    } finally {
      await app.close();
    }
  });
});
