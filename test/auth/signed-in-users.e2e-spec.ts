import type { Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { ChangeFeed } from '../../src/database/change-feed';
import { bearer, mintAccessToken } from '../support/auth';
import { waitUntil } from '../support/recovery';
import { startTestApp, TestApp } from '../support/test-app';

const ENTITLEMENT = 'urn:mace:labgate.test:group:kept';

/**
 * A bearer request's user row and roles are kept in memory while PostgreSQL notifies their
 * changes. Changes made with a trigger disabled (no notification) show what is answered from
 * memory; with it enabled, that a change made elsewhere drops what was kept.
 */
describe('bearer requests: the signed-in user kept in memory', () => {
  let app: TestApp;
  let http: Server;
  let db: Client;

  beforeAll(async () => {
    app = await startTestApp();
    http = app.app.getHttpServer();
    db = new Client({ connectionString: app.config.database.url });
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await app.close();
  });

  const tokenFor = async (sub: string, claims: Record<string, unknown> = {}) =>
    bearer(
      await mintAccessToken(app, {
        sub,
        name: `Name of ${sub}`,
        [app.config.auth.entitlementClaim]: [ENTITLEMENT],
        ...claims,
      }),
    );
  const me = (headers: Record<string, string>) => request(http).get('/api/v1/me').set(headers);

  /** A user whose row and roles are kept (the feed listens, and one request read them). */
  async function keptUser(sub: string) {
    const headers = await tokenFor(sub);
    await me(headers).expect(200);
    await waitUntil('the change feed to listen', () =>
      Promise.resolve(app.app.get(ChangeFeed).active),
    );
    const first = await me(headers).expect(200);
    return { headers, id: first.body.id as string };
  }

  async function withoutTrigger(table: string, trigger: string, sql: string, params: unknown[]) {
    await db.query(`alter table ${table} disable trigger ${trigger}`);
    try {
      await db.query(sql, params);
    } finally {
      await db.query(`alter table ${table} enable trigger ${trigger}`);
    }
  }

  /** Blocks a user with nothing notified: only a read of PostgreSQL sees it. */
  const blockUnnotified = (id: string) =>
    withoutTrigger(
      'app_user',
      'app_user_changed_notify',
      `update app_user set blocked = true where id = $1`,
      [id],
    );

  it('answers from memory, and refuses a user blocked elsewhere once PostgreSQL notifies', async () => {
    const { headers, id } = await keptUser('kept-1');
    // Blocked with no notification: the kept row still answers (this is what memory serves).
    await blockUnnotified(id);
    await me(headers).expect(200);
    // The same change, notified: refused once the notification is in.
    await db.query(`update app_user set blocked = true where id = $1`, [id]);
    await waitUntil('the block to apply', async () => (await me(headers)).status === 401);
    await db.query(`update app_user set blocked = false where id = $1`, [id]);
    await waitUntil('the unblock to apply', async () => (await me(headers)).status === 200);
  });

  it('applies a rule changed elsewhere once notified, and not before', async () => {
    const { headers } = await keptUser('kept-2');
    expect((await me(headers).expect(200)).body.roles).toEqual(['user']);
    await withoutTrigger(
      'entitlement_rule',
      'entitlement_rule_changed_notify',
      `insert into entitlement_rule (id, entitlement, match, role, created_at)
       values (gen_random_uuid(), $1, 'exact', 'operator', now())`,
      [ENTITLEMENT],
    );
    expect((await me(headers).expect(200)).body.roles).toEqual(['user']);
    await db.query(`update entitlement_rule set role = 'admin' where entitlement = $1`, [
      ENTITLEMENT,
    ]);
    await waitUntil(
      'the rule to apply',
      async () => (await me(headers)).body.roles?.includes('admin') as boolean,
    );
    await db.query(`delete from entitlement_rule where entitlement = $1`, [ENTITLEMENT]);
    await waitUntil(
      'the rule to be gone',
      async () => (await me(headers)).body.roles?.length === 1,
    );
  });

  it('reads the row again when the token says something else than the kept row', async () => {
    const { id } = await keptUser('kept-3');
    const renamed = await tokenFor('kept-3', { name: 'A new name' });
    const res = await me(renamed).expect(200);
    expect(res.body).toMatchObject({ id, name: 'A new name' });
    const { rows } = await db.query(`select name from app_user where id = $1`, [id]);
    expect(rows[0].name).toBe('A new name');
  });

  it('reads PostgreSQL while the change feed is down, and keeps again once it is back', async () => {
    const { headers, id } = await keptUser('kept-4');
    const [killed] = (
      await db.query(
        `select pg_terminate_backend(pid) as done from pg_stat_activity
          where application_name = 'labgate change feed' and datname = current_database()`,
      )
    ).rows;
    expect(killed?.done).toBe(true);
    await waitUntil('the feed to be lost', () => Promise.resolve(!app.app.get(ChangeFeed).active));
    // Nothing kept is trusted: a change nobody notified is seen at once.
    await blockUnnotified(id);
    await me(headers).expect(401);
    await db.query(`update app_user set blocked = false where id = $1`, [id]);
    await waitUntil('the feed to listen again', async () => {
      await me(headers);
      return app.app.get(ChangeFeed).active;
    });
  });
});
