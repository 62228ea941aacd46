import { createHash } from 'node:crypto';
import type { Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { bearer, demoUser, loginAs } from '../support/auth';
import { startTestApp, TestApp } from '../support/test-app';

const inAWeek = () => new Date(Date.now() + 7 * 24 * 3600_000).toISOString();

describe('personal access tokens', () => {
  let app: TestApp;
  let http: Server;
  let adminCookie: string;
  let db: Client;

  async function create(cookie: string, body: Record<string, unknown>) {
    return request(http).post('/api/v1/me/tokens').set('Cookie', cookie).send(body);
  }

  beforeAll(async () => {
    app = await startTestApp({ ADMIN_ENTITLEMENTS: demoUser('admin').entitlements[1] });
    http = app.app.getHttpServer();
    adminCookie = (await loginAs(http, 'admin')).cookie;
    db = new Client({ connectionString: app.database.url });
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await app.close();
  });

  it('is shown once, stored only as a hash, and listed without its secret', async () => {
    const res = await create(adminCookie, { name: 'ci', expiresAt: inAWeek(), scopes: ['read'] });
    expect(res.status).toBe(201);
    expect(res.body.token).toMatch(/^lgp_[\w-]{43}$/);
    expect(res.body.hint).toBe(res.body.token.slice(0, 8));

    const stored = await db.query('select secret_hash from personal_access_token where id = $1', [
      res.body.id,
    ]);
    expect(stored.rows[0].secret_hash).toBe(
      createHash('sha256').update(res.body.token).digest('hex'),
    );
    const list = await request(http)
      .get('/api/v1/me/tokens')
      .set('Cookie', adminCookie)
      .expect(200);
    expect(list.body.map((t: { id: string }) => t.id)).toContain(res.body.id);
    expect(JSON.stringify(list.body)).not.toContain(res.body.token);
  });

  it('authenticates as its owner; a read token cannot change anything', async () => {
    const { body } = await create(adminCookie, {
      name: 'r',
      expiresAt: inAWeek(),
      scopes: ['read'],
    });
    const me = await request(http).get('/api/v1/me').set(bearer(body.token)).expect(200);
    expect(me.body).toMatchObject({
      subject: 'dev-admin',
      authenticatedBy: 'pat',
      scopes: ['read'],
    });
    const write = await request(http)
      .delete(`/api/v1/me/tokens/${body.id}`)
      .set(bearer(body.token));
    expect(write.status).toBe(403);
    expect(write.body.detail).toMatch(/no "write" scope/);
  });

  it("acts as a plain user unless given the admin scope, then with its owner's roles", async () => {
    const plain = (await create(adminCookie, { name: 'p', expiresAt: inAWeek(), scopes: ['read'] }))
      .body.token as string;
    const admin = (
      await create(adminCookie, { name: 'a', expiresAt: inAWeek(), scopes: ['read', 'admin'] })
    ).body.token as string;
    await request(http).get('/api/v1/admin/entitlement-rules').set(bearer(plain)).expect(403);
    await request(http).get('/api/v1/admin/entitlement-rules').set(bearer(admin)).expect(200);
  });

  it('cannot create further tokens', async () => {
    const { body } = await create(adminCookie, {
      name: 'w',
      expiresAt: inAWeek(),
      scopes: ['read', 'write'],
    });
    const res = await request(http)
      .post('/api/v1/me/tokens')
      .set(bearer(body.token))
      .send({ name: 'child', expiresAt: inAWeek(), scopes: ['read'] });
    expect(res.status).toBe(403);
  });

  it('stops working once revoked', async () => {
    const { body } = await create(adminCookie, {
      name: 'x',
      expiresAt: inAWeek(),
      scopes: ['read'],
    });
    await request(http).get('/api/v1/me').set(bearer(body.token)).expect(200);
    await request(http)
      .delete(`/api/v1/me/tokens/${body.id}`)
      .set('Cookie', adminCookie)
      .expect(204);
    const res = await request(http).get('/api/v1/me').set(bearer(body.token));
    expect(res.status).toBe(401);
    expect(res.body.detail).toMatch(/unknown, revoked or expired/);
  });

  it('stops working once expired', async () => {
    const { body } = await create(adminCookie, {
      name: 'e',
      expiresAt: inAWeek(),
      scopes: ['read'],
    });
    await db.query(
      `update personal_access_token set expires_at = now() - interval '1 second' where id = $1`,
      [body.id],
    );
    expect((await request(http).get('/api/v1/me').set(bearer(body.token))).status).toBe(401);
  });

  it("cannot revoke someone else's token (404)", async () => {
    const { body } = await create(adminCookie, {
      name: 'o',
      expiresAt: inAWeek(),
      scopes: ['read'],
    });
    const { cookie } = await loginAs(http, 'user');
    await request(http).delete(`/api/v1/me/tokens/${body.id}`).set('Cookie', cookie).expect(404);
    await request(http).get('/api/v1/me').set(bearer(body.token)).expect(200);
  });

  it('refuses bad input with a field error per problem and creates nothing', async () => {
    const before = await db.query('select count(*)::int as n from personal_access_token');
    const res = await create(adminCookie, {
      name: '',
      expiresAt: '2001-01-01T00:00:00Z',
      scopes: ['read', 'root'],
      extra: 1,
    });
    expect(res.status).toBe(400);
    const fields = (res.body.errors as Array<{ field: string }>).map((e) => e.field);
    expect(new Set(fields)).toEqual(new Set(['name', 'expiresAt', 'scopes', 'extra']));
    const after = await db.query('select count(*)::int as n from personal_access_token');
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });

  it('refuses a lifetime of more than a year', async () => {
    const res = await create(adminCookie, {
      name: 'long',
      expiresAt: new Date(Date.now() + 400 * 24 * 3600_000).toISOString(),
      scopes: ['read'],
    });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].field).toBe('expiresAt');
  });
});
