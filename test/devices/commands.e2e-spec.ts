import type { Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { DeviceCommandsService } from '../../src/devices/device-commands.service';
import {
  createDevice,
  deviceHeaders,
  heartbeat,
  roleHeaders,
  ROLE_ENV,
  type RoleHeaders,
} from '../support/devices';
import { startTestApp, TestApp } from '../support/test-app';

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

function expectProblem(res: request.Response, status: number, fields: string[] = []) {
  expect({ status: res.status, body: res.body }).toMatchObject({ status, body: { status } });
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(typeof res.body.detail).toBe('string');
  const named = ((res.body.errors ?? []) as Array<{ field: string }>).map((e) => e.field);
  expect(named).toEqual(expect.arrayContaining(fields));
}

describe('device commands and the agent heartbeat', () => {
  let app: TestApp;
  let http: Server;
  let roles: RoleHeaders;
  let db: Client;
  let operatorId: string;

  beforeAll(async () => {
    app = await startTestApp({ ...ROLE_ENV, ROLE: 'api', LOCAL_DEVICE: 'false' });
    http = app.app.getHttpServer();
    roles = await roleHeaders(app);
    operatorId = (await request(http).get('/api/v1/me').set(roles.operator).expect(200)).body.id;
    db = new Client({ connectionString: app.database.url });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await app?.close();
  });

  const issue = async (deviceId: string, body: object, who = roles.operator) =>
    (
      await request(http)
        .post(`/api/v1/devices/${deviceId}/commands`)
        .set(who)
        .send(body)
        .expect(201)
    ).body;
  const commands = async (deviceId: string, query: Record<string, string | number> = {}) =>
    (
      await request(http)
        .get(`/api/v1/devices/${deviceId}/commands`)
        .query(query)
        .set(roles.operator)
        .expect(200)
    ).body as { items: Array<Record<string, unknown>>; nextCursor?: string };
  const ack = (token: string, id: string, body: object) =>
    request(http).post(`/api/v1/agent/commands/${id}/ack`).set(deviceHeaders(token)).send(body);
  /** Issue order alone may tie on the millisecond: spread the commands a second apart. */
  const spreadInTime = async (ids: string[]) => {
    for (const [i, id] of ids.entries()) {
      await db.query(
        `update device_command set created_at = now() - make_interval(secs => $2) where id = $1`,
        [id, ids.length - i],
      );
    }
  };
  const commandRows = async (deviceId: string) =>
    (
      await db.query(
        `select id, state, delivered_at, acknowledged_at, message from device_command
          where device_id = $1 order by created_at, id`,
        [deviceId],
      )
    ).rows;

  it('delivers a command in the next heartbeat until it is acknowledged, then no more', async () => {
    const { id: deviceId, token } = await createDevice(http, roles.admin, { kind: 'enclosure' });
    const issued = await issue(deviceId, { type: 'start', args: { session: 'A12' } });
    expect(issued).toMatchObject({
      deviceId,
      type: 'start',
      args: { session: 'A12' },
      state: 'pending',
      issuedBy: operatorId,
    });
    expect(issued.deliveredAt).toBeUndefined();

    const first = await heartbeat(http, token, { status: 'idle' });
    expect(first.commands).toEqual([
      { id: issued.id, type: 'start', args: { session: 'A12' }, createdAt: issued.createdAt },
    ]);
    const [delivered] = (await commands(deviceId)).items;
    expect(delivered).toMatchObject({ id: issued.id, state: 'delivered' });
    expect(typeof delivered.deliveredAt).toBe('string');

    // Not acknowledged yet: carried again, still delivered at the first delivery.
    const second = await heartbeat(http, token);
    expect(second.commands.map((c: { id: string }) => c.id)).toEqual([issued.id]);
    expect((await commands(deviceId)).items[0]).toMatchObject({
      state: 'delivered',
      deliveredAt: delivered.deliveredAt,
    });

    const acked = await ack(token, issued.id, { ok: true, message: 'started' });
    expect(acked.status).toBe(200);
    expect(acked.body).toEqual({ id: issued.id, state: 'acknowledged' });
    const [done] = (await commands(deviceId)).items;
    expect(done).toMatchObject({ state: 'acknowledged', message: 'started' });
    expect(typeof done.acknowledgedAt).toBe('string');

    expect((await heartbeat(http, token)).commands).toEqual([]);
  });

  it('answers a repeated ack with the same state and changes nothing', async () => {
    const { id: deviceId, token } = await createDevice(http, roles.admin);
    const { id } = await issue(deviceId, { type: 'restart' });
    await heartbeat(http, token);
    expect((await ack(token, id, { ok: true, message: 'first' })).body).toEqual({
      id,
      state: 'acknowledged',
    });
    const before = await commandRows(deviceId);
    const again = await ack(token, id, { ok: false, message: 'second' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ id, state: 'acknowledged' });
    expect(await commandRows(deviceId)).toEqual(before);
    expect(before[0]).toMatchObject({ state: 'acknowledged', message: 'first' });
  });

  it('marks a command failed when the agent acks it with ok: false', async () => {
    const { id: deviceId, token } = await createDevice(http, roles.admin);
    const { id } = await issue(deviceId, { type: 'custom', args: { action: 'calibrate' } });
    await heartbeat(http, token);
    const res = await ack(token, id, { ok: false, message: 'camera disconnected' });
    expect(res.body).toEqual({ id, state: 'failed' });
    expect((await commands(deviceId)).items[0]).toMatchObject({
      state: 'failed',
      message: 'camera disconnected',
    });
    expect((await heartbeat(http, token)).commands).toEqual([]);
  });

  it("answers 404 to a device acking another device's command, or an unknown one", async () => {
    const owner = await createDevice(http, roles.admin);
    const stranger = await createDevice(http, roles.admin);
    const { id } = await issue(owner.id, { type: 'stop' });
    await heartbeat(http, owner.token);
    const before = await commandRows(owner.id);
    expectProblem(await ack(stranger.token, id, { ok: true }), 404);
    expectProblem(await ack(owner.token, UNKNOWN_ID, { ok: true }), 404);
    expect(await commandRows(owner.id)).toEqual(before);
    expect(before[0].state).toBe('delivered');
    expect((await heartbeat(http, owner.token)).commands.map((c: { id: string }) => c.id)).toEqual([
      id,
    ]);
  });

  it('carries every unacknowledged command oldest first, only to its own device', async () => {
    const { id: deviceId, token } = await createDevice(http, roles.admin);
    const other = await createDevice(http, roles.admin);
    const ids: string[] = [];
    for (const type of ['start', 'custom', 'stop']) {
      ids.push((await issue(deviceId, { type })).id as string);
    }
    await spreadInTime(ids);
    await issue(other.id, { type: 'start' });
    await ack(token, ids[1], { ok: true }).expect(200); // acknowledged before it was delivered
    const reply = await heartbeat(http, token);
    expect(reply.commands.map((c: { id: string }) => c.id)).toEqual([ids[0], ids[2]]);
    expect(reply.commands.map((c: { type: string }) => c.type)).toEqual(['start', 'stop']);
  });

  it('lists the commands of a device newest first, page by page', async () => {
    const { id: deviceId } = await createDevice(http, roles.admin);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await issue(deviceId, { type: 'custom', args: { i } })).id as string);
    }
    await spreadInTime(ids);
    const walked: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await commands(deviceId, cursor ? { limit: 2, cursor } : { limit: 2 });
      expect(page.items.length).toBeLessThanOrEqual(2);
      walked.push(...page.items.map((c) => c.id as string));
      cursor = page.nextCursor;
    } while (cursor);
    expect(walked).toEqual([...ids].reverse());
  });

  it('lets the jobs module issue a stop for a job as system, delivered like any other', async () => {
    const { id: deviceId, token } = await createDevice(http, roles.admin);
    const service = app.app.get(DeviceCommandsService);
    const jobId = '11111111-1111-4111-8111-111111111111';
    const command = await service.issue(deviceId, { type: 'stop', args: { jobId } }, 'system');
    expect(command).toMatchObject({ type: 'stop', state: 'pending', issuedBy: 'system' });
    expect((await heartbeat(http, token)).commands).toEqual([
      { id: command.id, type: 'stop', args: { jobId }, createdAt: expect.any(String) },
    ]);
    await expect(service.issue(UNKNOWN_ID, { type: 'stop' }, 'system')).rejects.toMatchObject({
      status: 404,
    });
    const audit = await db.query(
      `select actor_kind, details from audit_event
        where action = 'device_command.issue' and target_id = $1`,
      [deviceId],
    );
    expect(audit.rows).toEqual([
      {
        actor_kind: 'system',
        details: expect.objectContaining({ commandId: command.id, issuedBy: 'system' }),
      },
    ]);
  });

  it('audits commands issued by operators with who issued them', async () => {
    const { id: deviceId } = await createDevice(http, roles.admin);
    const { id } = await issue(deviceId, { type: 'start' }, roles.admin);
    const audit = await db.query(
      `select actor_kind, actor_id, details from audit_event
        where action = 'device_command.issue' and target_id = $1`,
      [deviceId],
    );
    expect(audit.rows).toEqual([
      {
        actor_kind: 'user',
        actor_id: expect.any(String),
        details: expect.objectContaining({ commandId: id, type: 'start' }),
      },
    ]);
  });

  it('refuses commands for devices the workers run (local, ssh): nothing would collect them', async () => {
    const { id: deviceId } = await createDevice(http, roles.admin, { runner: 'local' });
    const res = await request(http)
      .post(`/api/v1/devices/${deviceId}/commands`)
      .set(roles.operator)
      .send({ type: 'stop' });
    expectProblem(res, 409);
    expect(res.body.detail).toMatch(/runner local.*takes no commands/);
    expect(await commandRows(deviceId)).toEqual([]);
  });

  it('refuses commands from plain users (403) and for unknown devices (404)', async () => {
    const { id: deviceId } = await createDevice(http, roles.admin);
    expectProblem(
      await request(http)
        .post(`/api/v1/devices/${deviceId}/commands`)
        .set(roles.user)
        .send({ type: 'start' }),
      403,
    );
    expectProblem(
      await request(http).get(`/api/v1/devices/${deviceId}/commands`).set(roles.user),
      403,
    );
    expectProblem(
      await request(http)
        .post(`/api/v1/devices/${UNKNOWN_ID}/commands`)
        .set(roles.operator)
        .send({ type: 'start' }),
      404,
    );
    expectProblem(
      await request(http).get(`/api/v1/devices/${UNKNOWN_ID}/commands`).set(roles.operator),
      404,
    );
    expect(await commandRows(deviceId)).toEqual([]);
  });

  it.each([
    ['an unknown type', { type: 'explode' }, ['type']],
    ['no type', { args: {} }, ['type']],
    ['args that are not an object', { type: 'start', args: ['a'] }, ['args']],
    ['an unknown field', { type: 'start', priority: 1 }, ['priority']],
  ])('refuses a command with %s (400 with field errors), storing none', async (_, body, fields) => {
    const { id: deviceId } = await createDevice(http, roles.admin);
    const res = await request(http)
      .post(`/api/v1/devices/${deviceId}/commands`)
      .set(roles.operator)
      .send(body);
    expectProblem(res, 400, fields);
    expect(await commandRows(deviceId)).toEqual([]);
  });

  it('refuses malformed ids on command routes with a 400 naming id', async () => {
    const { token } = await createDevice(http, roles.admin);
    expectProblem(
      await request(http)
        .post('/api/v1/devices/not-a-uuid/commands')
        .set(roles.operator)
        .send({ type: 'start' }),
      400,
      ['id'],
    );
    expectProblem(
      await request(http).get('/api/v1/devices/not-a-uuid/commands').set(roles.operator),
      400,
      ['id'],
    );
    expectProblem(await ack(token, 'not-a-uuid', { ok: true }), 400, ['id']);
  });

  it.each([
    ['without ok', { message: 'done' }, ['ok']],
    ['with ok not a boolean', { ok: 'yes' }, ['ok']],
    ['with an unknown field', { ok: true, extra: 1 }, ['extra']],
  ])(
    'refuses an ack %s (400 with field errors) and leaves the command',
    async (_, body, fields) => {
      const { id: deviceId, token } = await createDevice(http, roles.admin);
      const { id } = await issue(deviceId, { type: 'stop' });
      await heartbeat(http, token);
      const before = await commandRows(deviceId);
      expectProblem(await ack(token, id, body), 400, fields);
      expect(await commandRows(deviceId)).toEqual(before);
      expect(before[0].state).toBe('delivered');
    },
  );

  it.each([
    ['a status over 200 characters', { status: 'x'.repeat(201) }, ['status']],
    ['metrics that are not an object', { metrics: [1, 2] }, ['metrics']],
    ['running jobs that are not job ids', { runningJobs: ['job-1'] }, ['runningJobs']],
    ['an unknown field', { uptime: 5 }, ['uptime']],
  ])('refuses a heartbeat with %s (400) and records nothing', async (_, body, fields) => {
    const { id: deviceId, token } = await createDevice(http, roles.admin);
    await issue(deviceId, { type: 'start' });
    const res = await request(http)
      .post('/api/v1/agent/heartbeat')
      .set(deviceHeaders(token))
      .send(body);
    expectProblem(res, 400, fields);
    const row = await db.query(
      `select last_heartbeat_at, reported_status from device where id = $1`,
      [deviceId],
    );
    expect(row.rows[0]).toEqual({ last_heartbeat_at: null, reported_status: null });
    expect((await commandRows(deviceId))[0].state).toBe('pending');
  });

  it('tells the agent to beat a third as often as DEVICE_DOWN_AFTER_SECONDS (default 60)', async () => {
    const { id, token, body } = await createDevice(http, roles.admin);
    expect(await heartbeat(http, token)).toEqual({
      deviceId: id,
      name: body.name,
      heartbeatSeconds: 20,
      commands: [],
    });
  });
});
