import type { Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { AUDITED_ACTION_NAMES } from '../../src/audit/audited-actions';
import {
  createDevice,
  deviceHeaders,
  heartbeat,
  roleHeaders,
  ROLE_ENV,
  type RoleHeaders,
} from '../support/devices';
import { startTestApp, TestApp } from '../support/test-app';

const AUDIT = '/api/v1/admin/audit';
const inAWeek = () => new Date(Date.now() + 7 * 24 * 3600_000).toISOString();

interface EventRow {
  id: string;
  at: string;
  actor: { kind: string; id?: string; email?: string };
  action: string;
  targetType: string;
  targetId?: string;
  ip?: string;
  requestId?: string;
  details?: Record<string, unknown>;
}

describe('admin: audit log', () => {
  let app: TestApp;
  let http: Server;
  let db: Client;
  let roles: RoleHeaders;
  let ids: { admin: string; user: string };
  let device: Awaited<ReturnType<typeof createDevice>>;
  let tokenId: string;

  async function listAll(query: Record<string, string | number>): Promise<EventRow[]> {
    const rows: EventRow[] = [];
    let cursor: string | undefined;
    do {
      const res = await request(http)
        .get(AUDIT)
        .set(roles.admin)
        .query({ limit: 200, ...query, ...(cursor ? { cursor } : {}) })
        .expect(200);
      rows.push(...res.body.items);
      cursor = res.body.nextCursor;
    } while (cursor);
    return rows;
  }

  beforeAll(async () => {
    app = await startTestApp({ ...ROLE_ENV, ROLE: 'api', LOCAL_DEVICE: 'false' });
    http = app.app.getHttpServer();
    db = new Client({ connectionString: app.database.url });
    await db.connect();
    roles = await roleHeaders(app);
    const me = async (h: Record<string, string>) =>
      (await request(http).get('/api/v1/me').set(h).expect(200)).body.id as string;
    ids = { admin: await me(roles.admin), user: await me(roles.user) };

    // Some history: an admin manages a device and a service, the device answers a command,
    // a user makes and revokes a token.
    const asAdmin = (requestId: string) => ({ ...roles.admin, 'X-Request-Id': requestId });
    device = await createDevice(http, asAdmin('req-device-create'), { runner: 'agent' });
    await request(http)
      .patch(`/api/v1/devices/${device.id}`)
      .set(asAdmin('req-device-update'))
      .send({ slots: 2 })
      .expect(200);
    const command = await request(http)
      .post(`/api/v1/devices/${device.id}/commands`)
      .set(asAdmin('req-command'))
      .send({ type: 'start' })
      .expect(201);
    await heartbeat(http, device.token);
    await request(http)
      .post(`/api/v1/agent/commands/${command.body.id}/ack`)
      .set(deviceHeaders(device.token))
      .send({ ok: true })
      .expect(200);
    await request(http)
      .patch('/api/v1/services/echo')
      .set(asAdmin('req-disable'))
      .send({ enabled: false })
      .expect(200);
    await request(http)
      .patch('/api/v1/services/echo')
      .set(asAdmin('req-enable'))
      .send({ enabled: true })
      .expect(200);
    const token = await request(http)
      .post('/api/v1/me/tokens')
      .set(roles.user)
      .send({ name: 'ci', expiresAt: inAWeek(), scopes: ['read'] })
      .expect(201);
    tokenId = token.body.id;
    await request(http).delete(`/api/v1/me/tokens/${tokenId}`).set(roles.user).expect(204);
  });
  afterAll(async () => {
    await db?.end();
    await app?.close();
  });

  it('pages newest first through every event, each once', async () => {
    const pages: EventRow[][] = [];
    let cursor: string | undefined;
    do {
      const res = await request(http)
        .get(AUDIT)
        .set(roles.admin)
        .query({ limit: 2, ...(cursor ? { cursor } : {}) })
        .expect(200);
      pages.push(res.body.items);
      cursor = res.body.nextCursor;
    } while (cursor);
    const { rows } = await db.query<{ id: string }>(
      'select id from audit_event order by at desc, id desc',
    );
    expect(rows.length).toBeGreaterThanOrEqual(8);
    expect(pages.flat().map((e) => e.id)).toEqual(rows.map((r) => r.id));
    expect(pages.length).toBe(Math.ceil(rows.length / 2));
  });

  it('says who did what to which object, when and from where', async () => {
    const [created] = await listAll({ action: 'device.create' });
    expect(created).toMatchObject({
      actor: { kind: 'user', id: ids.admin, email: 'test-admin@labgate.test' },
      action: 'device.create',
      targetType: 'device',
      targetId: device.id,
      requestId: 'req-device-create',
      ip: expect.stringMatching(/127\.0\.0\.1/),
      details: expect.objectContaining({ name: device.body.name }),
    });
    expect(Date.parse(created.at)).toBeGreaterThan(Date.now() - 120_000);

    const [acked] = await listAll({ action: 'device_command.acknowledged' });
    expect(acked.actor).toEqual({ kind: 'device', id: device.id });
  });

  it('filters by actor', async () => {
    const byUser = await listAll({ actor: ids.user });
    expect(byUser.map((e) => e.action)).toEqual(['token.revoke', 'token.create']);
    const byAdmin = await listAll({ actor: ids.admin });
    expect(byAdmin.length).toBeGreaterThan(0);
    expect(byAdmin.every((e) => e.actor.id === ids.admin)).toBe(true);
  });

  it('filters by exact action and by family', async () => {
    expect((await listAll({ action: 'service.disable' })).map((e) => e.requestId)).toEqual([
      'req-disable',
    ]);
    const services = await listAll({ action: 'service.' });
    expect(services.map((e) => e.action)).toEqual(['service.enable', 'service.disable']);
    const devices = await listAll({ action: 'device.' });
    expect(devices.map((e) => e.action)).toEqual(['device.update', 'device.create']);
    const commands = await listAll({ action: 'device_command.' });
    expect(commands.map((e) => e.action)).toEqual([
      'device_command.acknowledged',
      'device_command.issue',
    ]);
  });

  it('filters by target', async () => {
    const onDevice = await listAll({ targetType: 'device', targetId: device.id });
    expect(onDevice.map((e) => e.action)).toEqual([
      'device_command.issue',
      'device.update',
      'device.create',
    ]);
    const onToken = await listAll({ targetId: tokenId });
    expect(onToken.map((e) => [e.targetType, e.action])).toEqual([
      ['personal_access_token', 'token.revoke'],
      ['personal_access_token', 'token.create'],
    ]);
  });

  it('filters by a date range: from inclusive, to exclusive', async () => {
    const all = await listAll({});
    const pivot = all.find((e) => e.action === 'service.disable')!;
    const from = await listAll({ from: pivot.at });
    const to = await listAll({ to: pivot.at });
    expect(from.map((e) => e.id)).toContain(pivot.id);
    expect(to.map((e) => e.id)).not.toContain(pivot.id);
    expect(from.every((e) => e.at >= pivot.at)).toBe(true);
    expect(to.every((e) => e.at < pivot.at)).toBe(true);
    expect(from.length + to.length).toBe(all.length);
    const window = await listAll({
      from: pivot.at,
      to: new Date(Date.now() + 60_000).toISOString(),
    });
    expect(window.map((e) => e.id)).toEqual(from.map((e) => e.id));
  });

  it('refuses bad filters with a problem naming the field', async () => {
    for (const [query, field] of [
      [{ action: 'device' }, 'action'],
      [{ action: 'nothing.' }, 'action'],
      [{ action: 'device.%' }, 'action'],
      [{ targetType: 'planet' }, 'targetType'],
      [{ actor: 'someone' }, 'actor'],
      [{ from: 'yesterday' }, 'from'],
      [{ from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' }, 'from'],
      [{ cursor: 'abc' }, 'cursor'],
      [{ limit: 201 }, 'limit'],
    ] as const) {
      const res = await request(http).get(AUDIT).set(roles.admin).query(query);
      expect({ query, status: res.status }).toEqual({ query, status: 400 });
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
  });

  it('lists every audited action, and Swagger documents them on the action filter', async () => {
    const res = await request(http).get(`${AUDIT}/actions`).set(roles.admin).expect(200);
    expect(res.body.map((a: { action: string }) => a.action)).toEqual(AUDITED_ACTION_NAMES);
    expect(res.body).toContainEqual({
      action: 'user.block',
      targetType: 'user',
      description: expect.stringMatching(/blocked/),
    });
    const doc = (await request(http).get('/docs-json').expect(200)).body;
    const param = (
      doc.paths['/api/v1/admin/audit'].get.parameters as Array<{
        name: string;
        schema: { $ref?: string; enum?: string[] };
      }>
    ).find((p) => p.name === 'action')!;
    const schema = param.schema.$ref
      ? doc.components.schemas[param.schema.$ref.split('/').pop()!]
      : param.schema;
    expect(schema.enum).toEqual(expect.arrayContaining([...AUDITED_ACTION_NAMES, 'device.']));
  });

  it('is append-only in PostgreSQL: rows cannot be changed, deleted or truncated', async () => {
    const { rows: before } = await db.query('select * from audit_event order by id');
    for (const sql of [
      `update audit_event set action = 'auth.login' where action = 'device.create'`,
      `update audit_event set details = null`,
      `delete from audit_event where action = 'token.revoke'`,
      `delete from audit_event`,
      `truncate audit_event`,
    ]) {
      await expect(db.query(sql)).rejects.toThrow(/audit_event is append-only/);
    }
    const { rows: after } = await db.query('select * from audit_event order by id');
    expect(after).toEqual(before);
    // Appending still works.
    await db.query(
      `insert into audit_event (id, at, actor_kind, action, target_type)
       values (gen_random_uuid(), now(), 'system', 'job.expired', 'job')`,
    );
  });
});
