import { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Client } from 'pg';
import request from 'supertest';
import { JobScheduler } from '../../src/jobs/scheduling/job-scheduler';
import { DeviceWatch } from '../../src/jobs/scheduling/device-watch';
import { createDevice, deviceHeaders, heartbeat, roleHeaders, ROLE_ENV } from '../support/devices';
import { addSlowFinishService, SLOW_FINISH, waitUntil } from '../support/recovery';
import { testServicesDir } from '../support/services.fixture';
import { startTestApp, TestApp } from '../support/test-app';

type Headers = Record<string, string>;

/** A service with a 2 kB output cap and a result schema, for the agent endpoints' limits. */
function addTinyService(dir: string) {
  writeFileSync(
    join(dir, 'tiny.yaml'),
    `key: tiny
title: Tiny
version: 1.0.0
inputs: []
run:
  command: [node, -e, "0"]
  maxOutputBytes: 2048
resultSchema:
  type: object
  properties:
    score: { type: number }
  required: [score]
  additionalProperties: false
retentionDays: 1
`,
  );
}

describe('scheduling on devices and the agent protocol', () => {
  let app: TestApp;
  let http: Server;
  let roles: Awaited<ReturnType<typeof roleHeaders>>;
  let db: Client;

  beforeAll(async () => {
    const services = testServicesDir();
    addTinyService(services);
    addSlowFinishService(services); // two attempts, 1 s backoff
    app = await startTestApp({
      ...ROLE_ENV,
      SERVICES_DIR: services,
      ROLE: 'api',
      LOCAL_DEVICE: 'false',
      DEVICE_DOWN_AFTER_SECONDS: '30',
    });
    http = app.app.getHttpServer();
    roles = await roleHeaders(app);
    db = new Client({ connectionString: app.config.database.url });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await app?.close();
  });

  /** Every device of earlier tests out of the way: disabled, so they take no work. */
  afterEach(async () => {
    await db.query(
      `update job set state = 'cancelled' where state in ('queued', 'assigned', 'running')`,
    );
    await db.query(`update device set admin_state = 'disabled'`);
  });

  const submit = async (who: Headers, body: Record<string, unknown>, status = 201) =>
    (await request(http).post('/api/v1/jobs').set(who).send(body).expect(status)).body;
  const job = async (id: string, who: Headers = roles.admin) =>
    (await request(http).get(`/api/v1/jobs/${id}`).set(who).expect(200)).body;
  const settle = () => app.app.get(JobScheduler).settle();
  const claim = async (token: string, wait = 0) =>
    request(http).post(`/api/v1/agent/jobs/claim?wait=${wait}`).set(deviceHeaders(token));
  const sleepJob = { service: 'sleep', inputs: { seconds: 5 } };

  it('places jobs on the shortest queue over three devices, ties to the least recently used', async () => {
    const devices = [];
    for (let i = 0; i < 3; i++) {
      const d = await createDevice(http, roles.admin, { slots: 2, services: ['sleep'] });
      await heartbeat(http, d.token);
      devices.push(d);
    }
    const first = [];
    for (let i = 0; i < 3; i++) {
      first.push((await submit(roles.user, sleepJob)).id as string);
    }
    await settle();
    const placed = await Promise.all(first.map(async (id) => (await job(id)).deviceId as string));
    expect(new Set(placed).size).toBe(3); // one each, not two on the first device
    expect(placed.sort()).toEqual(devices.map((d) => d.id).sort());
    // Device 0 finishes its job: it now has the shortest queue and takes the next one.
    const claimed = await claim(devices[0].token);
    expect(claimed.status).toBe(200);
    await request(http)
      .post(`/api/v1/agent/jobs/${claimed.body.id}/fail`)
      .set(deviceHeaders(devices[0].token))
      .send({ reason: 'done early' })
      .expect(200);
    const next = (await submit(roles.other, sleepJob)).id as string;
    await settle();
    expect((await job(next)).deviceId).toBe(devices[0].id);
  });

  it('keeps a job waiting with its reason until a device offering the service appears', async () => {
    const { id } = await submit(roles.user, { service: 'float-add', inputs: { a: 1, b: 2 } });
    await settle();
    const waiting = await job(id, roles.user);
    expect(waiting).toMatchObject({ status: 'queued' });
    expect(waiting.reason).toMatch(/waiting for a device that offers float-add/);

    const device = await createDevice(http, roles.admin, { services: ['float-add'] });
    await heartbeat(http, device.token);
    const claimed = await claim(device.token, 10);
    expect(claimed.status).toBe(200);
    expect(claimed.body).toMatchObject({
      id,
      service: 'float-add',
      inputs: { a: 1, b: 2 },
      attempt: 1,
    });
    expect(await job(id, roles.user)).toMatchObject({ status: 'running', deviceId: device.id });
  });

  it("gives fair share: a second user's 5 jobs start before the first user's 50 are done", async () => {
    const device = await createDevice(http, roles.admin, { services: ['sleep'], slots: 1 });
    await heartbeat(http, device.token);
    const a: string[] = [];
    for (let i = 0; i < 50; i++) {
      a.push((await submit(roles.user, sleepJob)).id as string);
    }
    const b: string[] = [];
    for (let i = 0; i < 5; i++) {
      b.push((await submit(roles.other, sleepJob)).id as string);
    }
    const order: string[] = [];
    for (let i = 0; i < 12; i++) {
      await settle();
      const claimed = await claim(device.token, 5);
      expect(claimed.status).toBe(200);
      order.push(claimed.body.id as string);
      await request(http)
        .post(`/api/v1/agent/jobs/${claimed.body.id}/complete`)
        .set(deviceHeaders(device.token))
        .field('metrics', '{}')
        .expect(200);
    }
    // Every one of B's jobs ran within the first 12, while A still has 40 waiting.
    expect(b.every((id) => order.includes(id))).toBe(true);
    const lastB = Math.max(...b.map((id) => order.indexOf(id)));
    expect(lastB).toBeLessThan(11);
    expect(order.filter((id) => a.includes(id)).length).toBeGreaterThanOrEqual(5);
  }, 60_000);

  it('holds a user at MAX_RUNNING_PER_USER with the reason, while others run', async () => {
    const capped = await startTestApp({
      ...ROLE_ENV,
      SERVICES_DIR: testServicesDir(),
      ROLE: 'api',
      LOCAL_DEVICE: 'false',
      MAX_RUNNING_PER_USER: '1',
    });
    try {
      const h = capped.app.getHttpServer();
      const r = await roleHeaders(capped);
      const device = await createDevice(h, r.admin, { services: ['sleep'], slots: 3 });
      await heartbeat(h, device.token);
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        ids.push(
          (await request(h).post('/api/v1/jobs').set(r.user).send(sleepJob).expect(201)).body.id,
        );
      }
      const other = (await request(h).post('/api/v1/jobs').set(r.other).send(sleepJob).expect(201))
        .body.id;
      await capped.app.get(JobScheduler).settle();
      const states = await Promise.all(
        [...ids, other].map(
          async (id) => (await request(h).get(`/api/v1/jobs/${id}`).set(r.admin)).body,
        ),
      );
      expect(states.map((s) => s.status)).toEqual(['assigned', 'queued', 'assigned']);
      expect(states[1].reason).toMatch(/MAX_RUNNING_PER_USER 1/);
    } finally {
      await capped.close();
    }
  });

  it("orders one user's waiting jobs by priority, set by admins per service and per job", async () => {
    const j1 = (await submit(roles.user, sleepJob)).id as string;
    const j2 = (await submit(roles.user, sleepJob)).id as string;
    const service = await request(http)
      .patch('/api/v1/services/sleep')
      .set(roles.admin)
      .send({ priority: 5 })
      .expect(200);
    expect(service.body).toMatchObject({ key: 'sleep', enabled: true, priority: 5 });
    const j3 = (await submit(roles.user, sleepJob)).id as string;
    expect((await job(j3)).priority).toBe(5);
    await request(http)
      .patch(`/api/v1/jobs/${j2}`)
      .set(roles.admin)
      .send({ priority: 10 })
      .expect(200);
    // Users may not: neither on a job nor when submitting.
    await request(http)
      .patch(`/api/v1/jobs/${j1}`)
      .set(roles.user)
      .send({ priority: 99 })
      .expect(403);
    const refused = await request(http)
      .post('/api/v1/jobs')
      .set(roles.user)
      .send({ ...sleepJob, priority: 99 })
      .expect(403);
    expect(refused.body.detail).toMatch(/Only admins/);
    await request(http)
      .patch('/api/v1/services/sleep')
      .set(roles.admin)
      .send({ priority: null })
      .expect(200);

    const device = await createDevice(http, roles.admin, { services: ['sleep'] });
    await heartbeat(http, device.token);
    const order: string[] = [];
    for (let i = 0; i < 3; i++) {
      await settle();
      const claimed = await claim(device.token, 5);
      order.push(claimed.body.id as string);
      await request(http)
        .post(`/api/v1/agent/jobs/${claimed.body.id}/fail`)
        .set(deviceHeaders(device.token))
        .send({ reason: 'next' })
        .expect(200);
    }
    expect(order).toEqual([j2, j3, j1]);
  });

  it('runs a session on three enclosures as a batch, and cancelling it stops every device', async () => {
    const enclosures = [];
    for (const name of ['A', 'B', 'C']) {
      const d = await createDevice(http, roles.admin, {
        name: `enclosure-${name}-${Date.now()}`,
        kind: 'enclosure',
        services: ['sleep'],
      });
      await heartbeat(http, d.token);
      enclosures.push(d);
    }
    const batch = await submit(roles.operator, {
      ...sleepJob,
      targets: enclosures.map((d) => d.id),
    });
    expect(batch.batchId).toMatch(/^[0-9a-f-]{36}$/);
    expect(batch.jobs.map((j: { deviceId: string }) => j.deviceId)).toEqual(
      enclosures.map((d) => d.id),
    );
    await settle();
    // Each enclosure claims exactly its own job of the session.
    for (const [i, d] of enclosures.entries()) {
      const claimed = await claim(d.token, 5);
      expect(claimed.body.id).toBe(batch.jobs[i].id);
    }
    const listed = await request(http)
      .get('/api/v1/jobs')
      .query({ batchId: batch.batchId })
      .set(roles.operator)
      .expect(200);
    expect(listed.body.items).toHaveLength(3);

    const cancelled = await request(http)
      .post(`/api/v1/jobs/batches/${batch.batchId}/cancel`)
      .set(roles.operator)
      .expect(200);
    expect(cancelled.body.items.map((j: { status: string }) => j.status)).toEqual([
      'cancelled',
      'cancelled',
      'cancelled',
    ]);
    for (const [i, d] of enclosures.entries()) {
      const beat = await heartbeat(http, d.token);
      expect(beat.commands).toEqual([
        expect.objectContaining({ type: 'stop', args: { jobId: batch.jobs[i].id } }),
      ]);
    }
    // Another user cannot cancel (or see) the batch.
    await request(http)
      .post(`/api/v1/jobs/batches/${batch.batchId}/cancel`)
      .set(roles.user)
      .expect(404);
  });

  it('refuses batch targets that do not exist or do not offer the service', async () => {
    const gpu = await createDevice(http, roles.admin, { services: ['echo'] });
    const res = await request(http)
      .post('/api/v1/jobs')
      .set(roles.user)
      .send({ ...sleepJob, targets: [gpu.id, '00000000-0000-4000-8000-000000000000', 'nope'] })
      .expect(400);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    const fields = res.body.errors.map((e: { field: string }) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['targets[2]']));
    const again = await request(http)
      .post('/api/v1/jobs')
      .set(roles.user)
      .send({ ...sleepJob, targets: [gpu.id, '00000000-0000-4000-8000-000000000000'] })
      .expect(400);
    expect(again.body.errors).toEqual([
      { field: 'targets[0]', message: expect.stringMatching(/does not offer sleep/) },
      { field: 'targets[1]', message: expect.stringMatching(/there is no device/) },
    ]);
    expect(
      (await db.query(`select count(*)::int as n from job where state = 'queued'`)).rows[0].n,
    ).toBe(0);
  });

  it('puts a claimed job back when its device goes DOWN, and another device takes it', async () => {
    const lost = await createDevice(http, roles.admin, { services: [SLOW_FINISH] });
    await heartbeat(http, lost.token);
    const { id } = await submit(roles.user, { service: SLOW_FINISH, inputs: { seconds: 1 } });
    await settle();
    const claimed = await claim(lost.token, 5);
    expect(claimed.body.id).toBe(id);
    const spare = await createDevice(http, roles.admin, { services: [SLOW_FINISH] });

    // The lost device says nothing more (its last heartbeat ages past 30 s); the spare beats.
    await db.query(
      `update device set last_heartbeat_at = now() - interval '10 minutes' where id = $1`,
      [lost.id],
    );
    await heartbeat(http, spare.token);
    await app.app.get(DeviceWatch).sweep(); // or the periodic sweep got there first
    const back = await waitUntil(
      'the job to be back in the queue',
      async () => {
        const now = await job(id);
        return now.status === 'queued' && now;
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    expect(back.reason).toMatch(/went DOWN/);
    // After the service's 1 s retry backoff the spare device gets it.
    const retaken = await claim(spare.token, 10);
    expect(retaken.body).toMatchObject({ id, attempt: 2 });
    // The lost device, back, cannot act on the job any more.
    await request(http)
      .post(`/api/v1/agent/jobs/${id}/progress`)
      .set(deviceHeaders(lost.token))
      .send({ percent: 50 })
      .expect(404);
    // Operators hear of both: DOWN, and up again at its next heartbeat (outbox rows).
    await heartbeat(http, lost.token);
    const news = await db.query(
      `select type, data->>'deviceName' as name from outbox_event where subject_id = $1 order by id`,
      [lost.id],
    );
    expect(news.rows).toEqual([
      { type: 'device.down', name: lost.body.name },
      { type: 'device.up', name: lost.body.name },
    ]);
  });

  describe('agent endpoints refuse bad input with a problem and change nothing', () => {
    let mine: { id: string; token: string };
    let theirs: { id: string; token: string };
    let jobId: string;

    beforeEach(async () => {
      mine = await createDevice(http, roles.admin, { services: ['tiny'] });
      theirs = await createDevice(http, roles.admin, { services: ['tiny'] });
      await heartbeat(http, mine.token);
      await db.query(`update device set admin_state = 'disabled' where id = $1`, [theirs.id]);
      jobId = (await submit(roles.user, { service: 'tiny' })).id;
      await settle();
      expect((await claim(mine.token, 5)).body.id).toBe(jobId);
    });

    const unchanged = async () => {
      expect(await job(jobId)).toMatchObject({ status: 'running', progress: 0 });
    };

    it('answers 401 to a wrong token and 404 to another device', async () => {
      const wrong = await request(http)
        .post(`/api/v1/agent/jobs/${jobId}/progress`)
        .set(deviceHeaders('lgd_not-a-token'))
        .send({ percent: 10 })
        .expect(401);
      expect(wrong.headers['content-type']).toMatch(/application\/problem\+json/);
      for (const [path, body] of [
        ['progress', { percent: 10 }],
        ['fail', { reason: 'x' }],
      ] as const) {
        const res = await request(http)
          .post(`/api/v1/agent/jobs/${jobId}/${path}`)
          .set(deviceHeaders(theirs.token))
          .send(body)
          .expect(404);
        expect(res.body.detail).toMatch(/no job/);
      }
      await request(http)
        .get(`/api/v1/agent/jobs/${jobId}/inputs`)
        .set(deviceHeaders(theirs.token))
        .expect(404);
      await request(http)
        .post(`/api/v1/agent/jobs/${jobId}/complete`)
        .set(deviceHeaders(theirs.token))
        .field('metrics', '{"score": 1}')
        .expect(404);
      await request(http)
        .post(`/api/v1/agent/jobs/${jobId}/progress`)
        .set(roles.admin)
        .send({ percent: 1 })
        .expect(401);
      await unchanged();
    });

    it('refuses an oversized result (413), malformed or schema-violating metrics (400), a non-gzip result', async () => {
      const big = await request(http)
        .post(`/api/v1/agent/jobs/${jobId}/complete`)
        .set(deviceHeaders(mine.token))
        .field('metrics', '{"score": 1}')
        .attach('result', Buffer.alloc(64 * 1024, 7), 'result.tar.gz');
      expect(big.status).toBe(413);
      const malformed = await request(http)
        .post(`/api/v1/agent/jobs/${jobId}/complete`)
        .set(deviceHeaders(mine.token))
        .field('metrics', '{score')
        .expect(400);
      expect(malformed.body.errors[0].field).toBe('metrics');
      const schema = await request(http)
        .post(`/api/v1/agent/jobs/${jobId}/complete`)
        .set(deviceHeaders(mine.token))
        .field('metrics', '{"score": "high"}')
        .expect(400);
      expect(schema.body.errors[0].field).toMatch(/^metrics/);
      const notGzip = await request(http)
        .post(`/api/v1/agent/jobs/${jobId}/complete`)
        .set(deviceHeaders(mine.token))
        .field('metrics', '{"score": 1}')
        .attach('result', Buffer.from('plain text'), 'result.tar.gz')
        .expect(400);
      expect(notGzip.body.errors[0].field).toBe('result');
      await request(http)
        .post(`/api/v1/agent/jobs/${jobId}/progress`)
        .set(deviceHeaders(mine.token))
        .send({ percent: 101 })
        .expect(400);
      await unchanged();
      const stored = await request(http).get(`/api/v1/jobs/${jobId}/result`).set(roles.admin);
      expect(stored.status).toBe(409);
    });

    it('completes once: a repeated completion answers the same and keeps the first result', async () => {
      const result = gzipSync(Buffer.alloc(1024)); // a valid gzip, as a tar.gz would be
      for (let i = 0; i < 2; i++) {
        const res = await request(http)
          .post(`/api/v1/agent/jobs/${jobId}/complete`)
          .set(deviceHeaders(mine.token))
          .field('metrics', JSON.stringify({ score: i + 1 }))
          .attach('result', result, 'result.tar.gz')
          .expect(200);
        expect(res.body).toEqual({ id: jobId, status: 'succeeded' });
      }
      expect(await job(jobId)).toMatchObject({
        status: 'succeeded',
        metrics: { score: 1 },
        progress: 100,
      });
      await request(http)
        .post(`/api/v1/agent/jobs/${jobId}/progress`)
        .set(deviceHeaders(mine.token))
        .send({ percent: 5 })
        .expect(409);
    });
  });
});
