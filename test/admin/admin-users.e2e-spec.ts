import type { Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { bearer, demoUser, loginAs, mintAccessToken } from '../support/auth';
import { ROLE_ENV } from '../support/devices';
import { waitUntil } from '../support/recovery';
import { startTestApp, TestApp } from '../support/test-app';

const USERS = '/api/v1/admin/users';
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';
const inAWeek = () => new Date(Date.now() + 7 * 24 * 3600_000).toISOString();

interface UserRow {
  id: string;
  subject: string;
  email?: string;
  roles: string[];
  blocked: boolean;
  createdAt: string;
  lastLoginAt?: string;
}

describe('admin: users', () => {
  let app: TestApp;
  let http: Server;
  let db: Client;
  let admin: { Cookie: string };
  let adminId: string;

  /** A user signed in with a bearer token of their own (created at first use). */
  async function bearerUser(sub: string, extra: Record<string, unknown> = {}) {
    const token = await mintAccessToken(app, {
      sub,
      email: `${sub}@labgate.test`,
      name: `Name of ${sub}`,
      [app.config.auth.entitlementClaim]: ['urn:mace:labgate.test:member'],
      ...extra,
    });
    const me = await request(http).get('/api/v1/me').set(bearer(token)).expect(200);
    return { id: me.body.id as string, headers: bearer(token) };
  }

  async function listAll(query: Record<string, string | number>): Promise<UserRow[]> {
    const rows: UserRow[] = [];
    let cursor: string | undefined;
    do {
      const res = await request(http)
        .get(USERS)
        .set(admin)
        .query({ ...query, ...(cursor ? { cursor } : {}) })
        .expect(200);
      rows.push(...res.body.items);
      cursor = res.body.nextCursor;
    } while (cursor);
    return rows;
  }

  beforeAll(async () => {
    app = await startTestApp({
      ADMIN_ENTITLEMENTS: demoUser('admin').entitlements[1],
      OPERATOR_ENTITLEMENTS: ROLE_ENV.OPERATOR_ENTITLEMENTS,
      ROLE: 'api',
      LOCAL_DEVICE: 'false',
    });
    http = app.app.getHttpServer();
    db = new Client({ connectionString: app.database.url });
    await db.connect();
    admin = { Cookie: (await loginAs(http, 'admin')).cookie };
    adminId = (await request(http).get('/api/v1/me').set(admin).expect(200)).body.id;
  });
  afterAll(async () => {
    await db?.end();
    await app?.close();
  });

  describe('listing', () => {
    const subs = Array.from({ length: 7 }, (_, i) => `list-${i}`);

    beforeAll(async () => {
      for (const sub of subs) {
        await bearerUser(sub);
      }
      await bearerUser('list-op', {
        [app.config.auth.entitlementClaim]: [ROLE_ENV.OPERATOR_ENTITLEMENTS],
      });
    });

    it('pages newest first through every user, each once, in a stable order', async () => {
      const pages: UserRow[][] = [];
      let cursor: string | undefined;
      do {
        const res = await request(http)
          .get(USERS)
          .set(admin)
          .query({ limit: 3, ...(cursor ? { cursor } : {}) })
          .expect(200);
        expect(res.body.items.length).toBeLessThanOrEqual(3);
        pages.push(res.body.items);
        cursor = res.body.nextCursor;
      } while (cursor);
      const rows = pages.flat();
      const { rows: all } = await db.query<{ id: string }>(
        'select id from app_user order by created_at desc, id desc',
      );
      expect(rows.map((r) => r.id)).toEqual(all.map((r) => r.id));
      expect(pages.length).toBeGreaterThan(2);
      // Users created meanwhile do not disturb a paging in progress: the cursor is a keyset.
      const first = await request(http).get(USERS).set(admin).query({ limit: 2 }).expect(200);
      await bearerUser('late-comer');
      const second = await request(http)
        .get(USERS)
        .set(admin)
        .query({ limit: 2, cursor: first.body.nextCursor })
        .expect(200);
      expect(second.body.items.map((r: UserRow) => r.id)).toEqual(
        rows.slice(2, 4).map((r) => r.id),
      );
    });

    it('shows roles as the auth module computes them, entitlements and timestamps', async () => {
      const rows = await listAll({ limit: 200 });
      const bySubject = new Map(rows.map((r) => [r.subject, r]));
      expect(bySubject.get('dev-admin')).toMatchObject({
        id: adminId,
        email: demoUser('admin').email,
        roles: ['user', 'operator', 'admin'],
        blocked: false,
      });
      expect(bySubject.get('list-op')!.roles).toEqual(['user', 'operator']);
      expect(bySubject.get('list-0')).toMatchObject({
        roles: ['user'],
        email: 'list-0@labgate.test',
        entitlements: ['urn:mace:labgate.test:member'],
      });
      expect(Date.parse(bySubject.get('list-0')!.createdAt)).not.toBeNaN();

      // A rule an admin adds changes the roles shown at once, as it does the roles checked.
      const rule = await request(http)
        .post('/api/v1/admin/entitlement-rules')
        .set(admin)
        .send({ entitlement: 'urn:mace:labgate.test:member', match: 'exact', role: 'operator' })
        .expect(201);
      try {
        const after = await listAll({ limit: 200, q: 'list-0' });
        expect(after.find((r) => r.subject === 'list-0')!.roles).toEqual(['user', 'operator']);
      } finally {
        await request(http)
          .delete(`/api/v1/admin/entitlement-rules/${rule.body.id}`)
          .set(admin)
          .expect(204);
      }
    });

    it('searches email, name and subject, case-insensitively, with wildcards taken literally', async () => {
      const subjects = async (q: string) => (await listAll({ q })).map((r) => r.subject).sort();
      expect(await subjects('LIST-3@LABGATE')).toEqual(['list-3']);
      expect(await subjects('name of list-4')).toEqual(['list-4']);
      expect(await subjects('dev-adm')).toEqual(['dev-admin']);
      expect(await subjects('list-%')).toEqual([]);
      expect(await subjects('list_1')).toEqual([]);
      expect(await subjects('list-')).toEqual([...subs, 'list-op'].sort());
    });

    it('filters by role, paging through computed roles', async () => {
      const operators = await listAll({ role: 'operator', limit: 1 });
      expect(operators.map((r) => r.subject).sort()).toEqual(['dev-admin', 'list-op']);
      const admins = await listAll({ role: 'admin' });
      expect(admins.map((r) => r.subject)).toEqual(['dev-admin']);
    });

    it('refuses bad filters with a problem naming the field', async () => {
      for (const [query, field] of [
        [{ role: 'root' }, 'role'],
        [{ blocked: 'maybe' }, 'blocked'],
        [{ limit: 0 }, 'limit'],
        [{ cursor: 'not-a-cursor' }, 'cursor'],
        [{ q: 'x'.repeat(201) }, 'q'],
      ] as const) {
        const res = await request(http).get(USERS).set(admin).query(query);
        expect({ query, status: res.status }).toEqual({ query, status: 400 });
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
      }
    });

    it('answers 404 for an unknown user and 400 for a malformed id', async () => {
      await request(http).get(`${USERS}/${UNKNOWN_ID}`).set(admin).expect(404);
      await request(http)
        .patch(`${USERS}/${UNKNOWN_ID}`)
        .set(admin)
        .send({ blocked: true })
        .expect(404);
      const bad = await request(http).get(`${USERS}/nope`).set(admin).expect(400);
      expect(bad.body.errors[0].field).toBe('id');
    });
  });

  describe('last sign-in', () => {
    it('is set by a browser login, by each bearer token use and by a personal access token', async () => {
      const lastLogin = async (id: string) =>
        (await request(http).get(`${USERS}/${id}`).set(admin).expect(200)).body
          .lastLoginAt as string;

      expect(Date.parse(await lastLogin(adminId))).toBeGreaterThan(Date.now() - 60_000);

      const jwtUser = await bearerUser('seen-by-bearer');
      await db.query('update app_user set last_login_at = null where id = $1', [jwtUser.id]);
      // A change made behind the API's back applies once PostgreSQL has notified it (the
      // user row a bearer request reads is kept in memory until then).
      await waitUntil('the next bearer request to count as a sign-in', async () => {
        await request(http).get('/api/v1/me').set(jwtUser.headers).expect(200);
        return Date.parse(await lastLogin(jwtUser.id)) > Date.now() - 60_000;
      });

      const pat = await request(http)
        .post('/api/v1/me/tokens')
        .set(admin)
        .send({ name: 'seen', expiresAt: inAWeek(), scopes: ['read'] })
        .expect(201);
      await db.query('update app_user set last_login_at = null where id = $1', [adminId]);
      await request(http).get('/api/v1/me').set(bearer(pat.body.token)).expect(200);
      expect(Date.parse(await lastLogin(adminId))).toBeGreaterThan(Date.now() - 60_000);
    });
  });

  describe('blocking', () => {
    it("refuses the user's session, personal access token and bearer token at once; unblocking restores them", async () => {
      const session = { Cookie: (await loginAs(http, 'user')).cookie };
      const pat = bearer(
        (
          await request(http)
            .post('/api/v1/me/tokens')
            .set(session)
            .send({ name: 'ci', expiresAt: inAWeek(), scopes: ['read'] })
            .expect(201)
        ).body.token,
      );
      // An access token of the same person (issuer, sub) as the browser login.
      const jwt = bearer(await mintAccessToken(app));
      const credentials = { session, pat, jwt };
      const ids = new Set<string>();
      for (const headers of Object.values(credentials)) {
        ids.add((await request(http).get('/api/v1/me').set(headers).expect(200)).body.id);
      }
      expect(ids.size).toBe(1);
      const [userId] = ids;

      const blocked = await request(http)
        .patch(`${USERS}/${userId}`)
        .set(admin)
        .set('X-Request-Id', 'block-req-1')
        .send({ blocked: true })
        .expect(200);
      expect(blocked.body).toMatchObject({ id: userId, blocked: true, subject: 'dev-user' });
      for (const [kind, headers] of Object.entries(credentials)) {
        const res = await request(http).get('/api/v1/me').set(headers);
        expect({ kind, status: res.status }).toEqual({ kind, status: 401 });
        expect(res.body.detail).toBe('This account is blocked; contact the administrators.');
      }
      // Nor can the blocked user sign in again through the browser; refused attempts are not
      // sign-ins.
      await expect(loginAs(http, 'user')).rejects.toThrow(/403/);
      const after = await request(http).get(`${USERS}/${userId}`).set(admin).expect(200);
      expect(after.body.lastLoginAt).toBe(blocked.body.lastLoginAt);
      const listed = await request(http).get(USERS).set(admin).query({ blocked: true }).expect(200);
      expect(listed.body.items.map((u: UserRow) => u.id)).toEqual([userId]);

      await request(http)
        .patch(`${USERS}/${userId}`)
        .set(admin)
        .send({ blocked: false })
        .expect(200);
      for (const headers of Object.values(credentials)) {
        await request(http).get('/api/v1/me').set(headers).expect(200);
      }
      const unblocked = await request(http)
        .get(USERS)
        .set(admin)
        .query({ blocked: 'false', limit: 200 })
        .expect(200);
      expect(unblocked.body.items.map((u: UserRow) => u.id)).toContain(userId);

      const audit = await db.query(
        `select action, actor_id, actor_kind, target_type, request_id, ip from audit_event
          where target_id = $1 and action like 'user.%' order by at, id`,
        [userId],
      );
      expect(audit.rows).toEqual([
        {
          action: 'user.block',
          actor_id: adminId,
          actor_kind: 'user',
          target_type: 'user',
          request_id: 'block-req-1',
          ip: expect.any(String),
        },
        expect.objectContaining({ action: 'user.unblock', actor_id: adminId }),
      ]);
    });

    it('blocks an admin too, at the next request', async () => {
      const other = await bearerUser('other-admin', {
        [app.config.auth.entitlementClaim]: [demoUser('admin').entitlements[1]],
      });
      await request(http).get(USERS).set(other.headers).expect(200);
      await request(http)
        .patch(`${USERS}/${other.id}`)
        .set(admin)
        .send({ blocked: true })
        .expect(200);
      await request(http).get(USERS).set(other.headers).expect(401);
    });

    it('refuses an admin blocking themself, and changes nothing', async () => {
      const res = await request(http)
        .patch(`${USERS}/${adminId}`)
        .set(admin)
        .send({ blocked: true })
        .expect(409);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.detail).toMatch(/cannot block yourself/);
      await request(http).get(USERS).set(admin).expect(200);
      const { rows } = await db.query(
        `select count(*)::int as n from audit_event where action = 'user.block' and target_id = $1`,
        [adminId],
      );
      expect(rows[0].n).toBe(0);
    });

    it('audits only a change: blocking a blocked user again writes nothing', async () => {
      const target = await bearerUser('twice');
      for (let i = 0; i < 2; i++) {
        await request(http)
          .patch(`${USERS}/${target.id}`)
          .set(admin)
          .send({ blocked: true })
          .expect(200);
      }
      const { rows } = await db.query(
        `select count(*)::int as n from audit_event where action = 'user.block' and target_id = $1`,
        [target.id],
      );
      expect(rows[0].n).toBe(1);
    });

    it('refuses a body without a boolean blocked', async () => {
      const target = await bearerUser('body-check');
      for (const body of [{}, { blocked: 'yes' }, { blocked: true, role: 'admin' }]) {
        const res = await request(http).patch(`${USERS}/${target.id}`).set(admin).send(body);
        expect({ body, status: res.status }).toEqual({ body, status: 400 });
      }
    });
  });
});
