import type { Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { bearer, demoUser, loginAs, mintAccessToken } from '../support/auth';
import { startTestApp, TestApp } from '../support/test-app';

describe('roles from entitlements and admin rules', () => {
  let app: TestApp;
  let http: Server;
  let admin: string;
  let operator: string;
  let user: string;

  beforeAll(async () => {
    app = await startTestApp({ ADMIN_ENTITLEMENTS: demoUser('admin').entitlements[1] });
    http = app.app.getHttpServer();
    admin = (await loginAs(http, 'admin')).cookie;
    operator = (await loginAs(http, 'operator')).cookie;
    user = (await loginAs(http, 'user')).cookie;
  });
  afterAll(() => app.close());

  const roles = async (cookie: string) =>
    (await request(http).get('/api/v1/me').set('Cookie', cookie).expect(200)).body
      .roles as string[];
  /** The same for a script's access token (its user row and the rules come in one read). */
  const rolesByToken = async (entitlements: string[]) => {
    const token = await mintAccessToken(app, {
      sub: 'script-operator',
      [app.config.auth.entitlementClaim]: entitlements,
    });
    return (await request(http).get('/api/v1/me').set(bearer(token)).expect(200)).body
      .roles as string[];
  };

  it('lets an admin by entitlement reach the admin API', async () => {
    await request(http).get('/api/v1/admin/entitlement-rules').set('Cookie', admin).expect(200);
  });

  it('denies a user an admin route with a 403 problem', async () => {
    const res = await request(http).get('/api/v1/admin/entitlement-rules').set('Cookie', user);
    expect(res.status).toBe(403);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.detail).toBe('This needs the admin role.');
  });

  it('grants and withdraws a role through a rule, at the next request, audited', async () => {
    expect(await roles(operator)).toEqual(['user']);
    const created = await request(http)
      .post('/api/v1/admin/entitlement-rules')
      .set('Cookie', admin)
      .send({
        entitlement: 'urn:mace:labgate.dev:group:labgate:role=op',
        match: 'prefix',
        role: 'admin',
      })
      .expect(201);
    expect(await roles(operator)).toEqual(['user', 'operator', 'admin']);
    expect(await roles(user)).toEqual(['user']);
    const operatorEntitlements = demoUser('operator').entitlements;
    expect(await rolesByToken(operatorEntitlements)).toEqual(['user', 'operator', 'admin']);

    await request(http)
      .delete(`/api/v1/admin/entitlement-rules/${created.body.id}`)
      .set('Cookie', admin)
      .expect(204);
    expect(await roles(operator)).toEqual(['user']);
    expect(await rolesByToken(operatorEntitlements)).toEqual(['user']);

    const db = new Client({ connectionString: app.database.url });
    await db.connect();
    try {
      const audit = await db.query(
        `select action from audit_event where target_id = $1 order by at`,
        [created.body.id],
      );
      expect(audit.rows.map((r) => r.action)).toEqual([
        'entitlement_rule.create',
        'entitlement_rule.delete',
      ]);
    } finally {
      await db.end();
    }
  });

  it('matches an exact rule only on the exact entitlement', async () => {
    const created = await request(http)
      .post('/api/v1/admin/entitlement-rules')
      .set('Cookie', admin)
      .send({ entitlement: 'urn:mace:labgate.dev:group:labgate', match: 'exact', role: 'operator' })
      .expect(201);
    try {
      expect(await roles(user)).toEqual(['user']); // member entitlement ends with #dev-idp
    } finally {
      await request(http)
        .delete(`/api/v1/admin/entitlement-rules/${created.body.id}`)
        .set('Cookie', admin)
        .expect(204);
    }
  });

  it('refuses a duplicate rule (409) and an invalid one (400 with fields)', async () => {
    const rule = { entitlement: 'urn:x', match: 'exact', role: 'operator' };
    await request(http)
      .post('/api/v1/admin/entitlement-rules')
      .set('Cookie', admin)
      .send(rule)
      .expect(201);
    const dup = await request(http)
      .post('/api/v1/admin/entitlement-rules')
      .set('Cookie', admin)
      .send(rule);
    expect(dup.status).toBe(409);
    const bad = await request(http)
      .post('/api/v1/admin/entitlement-rules')
      .set('Cookie', admin)
      .send({ entitlement: '', match: 'regex', role: 'root' });
    expect(bad.status).toBe(400);
    expect(new Set(bad.body.errors.map((e: { field: string }) => e.field))).toEqual(
      new Set(['entitlement', 'match', 'role']),
    );
  });

  it('refuses a user managing rules, and answers 404 for an unknown rule', async () => {
    await request(http)
      .post('/api/v1/admin/entitlement-rules')
      .set('Cookie', user)
      .send({ entitlement: 'urn:y', match: 'exact', role: 'admin' })
      .expect(403);
    await request(http)
      .delete('/api/v1/admin/entitlement-rules/00000000-0000-4000-8000-000000000000')
      .set('Cookie', admin)
      .expect(404);
    await request(http)
      .delete('/api/v1/admin/entitlement-rules/not-a-uuid')
      .set('Cookie', admin)
      .expect(400);
  });
});
