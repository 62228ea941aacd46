import { createHash } from 'node:crypto';
import type { Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { DeviceEvents, type DeviceChange } from '../../src/devices/device-events';
import {
  createDevice,
  deviceHeaders,
  heartbeat,
  roleHeaders,
  ROLE_ENV,
  type RoleHeaders,
} from '../support/devices';
import { startTestApp, TestApp } from '../support/test-app';

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';
const FINGERPRINT = `SHA256:${'A'.repeat(42)}Q`;
const SSH = {
  host: 'login.hpc.example.org',
  username: 'labgate',
  privateKeyFile: '/run/secrets/hpc_key',
  hostFingerprint: FINGERPRINT,
  workDir: '/scratch/labgate',
  submitCommand: 'sbatch --parsable {script}',
};

/** A 4xx problem+json answer naming (at least) these fields in errors[]. */
function expectProblem(res: request.Response, status: number, fields: string[] = []) {
  expect({ status: res.status, body: res.body }).toMatchObject({ status, body: { status } });
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(typeof res.body.detail).toBe('string');
  const named = ((res.body.errors ?? []) as Array<{ field: string }>).map((e) => e.field);
  expect(named).toEqual(expect.arrayContaining(fields));
}

describe('device registry', () => {
  let app: TestApp;
  let http: Server;
  let roles: RoleHeaders;
  let db: Client;

  beforeAll(async () => {
    // No worker: it would keep the local and ssh devices alive and change their rows.
    app = await startTestApp({
      ...ROLE_ENV,
      ROLE: 'api',
      LOCAL_DEVICE: 'false',
      DEVICE_DOWN_AFTER_SECONDS: '2',
    });
    http = app.app.getHttpServer();
    roles = await roleHeaders(app);
    db = new Client({ connectionString: app.database.url });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await app?.close();
  });

  /** What a refused request must leave alone (down_since and active_jobs are kept by jobs). */
  const deviceRows = async () =>
    (
      await db.query(
        `select id, name, kind, runner, services, slots, location, labels, admin_state, ssh,
                token_hash, token_hint, last_heartbeat_at, created_at, updated_at
           from device order by id`,
      )
    ).rows;

  const auditActions = async (targetId: string) =>
    (
      await db.query(`select action, actor_id from audit_event where target_id = $1 order by at`, [
        targetId,
      ])
    ).rows as Array<{ action: string; actor_id: string | null }>;

  /**
   * `active_jobs` is kept by the scheduler, which recounts it from the job table on every
   * pass; holding the scheduler's advisory lock keeps a value set here while the test reads.
   */
  async function withActiveJobs<T>(deviceId: string, n: number, work: () => Promise<T>) {
    await db.query(`select pg_advisory_lock(hashtext('labgate.scheduler'))`);
    try {
      await db.query(`update device set active_jobs = $2 where id = $1`, [deviceId, n]);
      return await work();
    } finally {
      await db.query(`update device set active_jobs = 0 where id = $1`, [deviceId]);
      await db.query(`select pg_advisory_unlock(hashtext('labgate.scheduler'))`);
    }
  }

  const get = async (id: string, who = roles.operator) =>
    (await request(http).get(`/api/v1/devices/${id}`).set(who).expect(200)).body;

  describe('registration', () => {
    it('answers the device with its token once, and stores only the SHA-256 of it', async () => {
      const { id, token, body } = await createDevice(http, roles.admin, {
        name: 'enclosure-a',
        kind: 'enclosure',
        services: ['echo', 'float-add'],
        slots: 2,
        location: 'B2.14',
        labels: { room: 'B2.14' },
      });
      expect(token).toMatch(/^lgd_[A-Za-z0-9_-]{43}$/);
      expect(body).toMatchObject({
        id,
        name: 'enclosure-a',
        kind: 'enclosure',
        runner: 'agent',
        services: ['echo', 'float-add'],
        slots: 2,
        location: 'B2.14',
        labels: { room: 'B2.14' },
        adminState: 'enabled',
        state: 'DOWN',
        runningJobs: [],
        activeJobs: 0,
        tokenHint: token.slice(0, 8),
      });
      expect(body.lastHeartbeatAt).toBeUndefined();
      expect(body.tokenHash).toBeUndefined();

      const row = (await db.query(`select * from device where id = $1`, [id])).rows[0];
      expect(row.token_hash).toBe(sha256(token));
      expect(JSON.stringify(row)).not.toContain(token);

      const read = await get(id);
      expect(read.token).toBeUndefined();
      expect(read.tokenHash).toBeUndefined();
      expect(read).toMatchObject({ id, name: 'enclosure-a', state: 'DOWN' });
      const listed = await request(http).get('/api/v1/devices').set(roles.operator).expect(200);
      expect(JSON.stringify(listed.body)).not.toContain(token);

      expect(await auditActions(id)).toEqual([
        { action: 'device.create', actor_id: expect.any(String) },
      ]);
    });

    it('registers an ssh device, filling in the default port and poll interval', async () => {
      const { body } = await createDevice(http, roles.admin, {
        kind: 'hpc',
        runner: 'ssh',
        ssh: { ...SSH, cancelCommand: 'scancel {id}' },
      });
      expect(body.ssh).toEqual({
        ...SSH,
        cancelCommand: 'scancel {id}',
        port: 22,
        pollSeconds: 10,
      });
      expect((await get(body.id as string)).ssh).toEqual(body.ssh);
    });

    it('refuses a name that is taken with a 409 problem', async () => {
      await createDevice(http, roles.admin, { name: 'taken-name' });
      const before = await deviceRows();
      const res = await request(http)
        .post('/api/v1/devices')
        .set(roles.admin)
        .send({ name: 'taken-name', kind: 'gpu', runner: 'agent', services: ['*'], slots: 1 });
      expectProblem(res, 409);
      expect(res.body.detail).toContain('taken-name');
      expect(await deviceRows()).toEqual(before);
    });

    const valid = { name: 'valid-1', kind: 'gpu', runner: 'agent', services: ['*'], slots: 1 };
    const sshWithoutFingerprint: Partial<typeof SSH> = { ...SSH };
    delete sshWithoutFingerprint.hostFingerprint;
    it.each([
      ['an unknown kind', { kind: 'toaster' }, ['kind']],
      ['slots 0', { slots: 0 }, ['slots']],
      ['slots 257', { slots: 257 }, ['slots']],
      ['a name with a space', { name: 'gpu 01' }, ['name']],
      ['a name of 101 characters', { name: 'a'.repeat(101) }, ['name']],
      ['an unknown service key', { services: ['echo', 'no-such-service'] }, ['services']],
      ['an unknown field', { colour: 'red' }, ['colour']],
      ['labels that are not strings', { labels: { room: 7 } }, ['labels']],
      ['runner ssh without ssh settings', { runner: 'ssh' }, ['ssh']],
      ['ssh settings for runner agent', { ssh: SSH }, ['ssh']],
      [
        'ssh without a host fingerprint',
        { runner: 'ssh', ssh: sshWithoutFingerprint },
        ['ssh.hostFingerprint'],
      ],
      [
        'a malformed host fingerprint',
        { runner: 'ssh', ssh: { ...SSH, hostFingerprint: 'SHA256:abc' } },
        ['ssh.hostFingerprint'],
      ],
      [
        'a relative key file',
        { runner: 'ssh', ssh: { ...SSH, privateKeyFile: 'keys/id' } },
        ['ssh.privateKeyFile'],
      ],
      [
        'a relative work dir',
        { runner: 'ssh', ssh: { ...SSH, workDir: 'scratch' } },
        ['ssh.workDir'],
      ],
      [
        'a submit command without {script}',
        { runner: 'ssh', ssh: { ...SSH, submitCommand: 'sbatch' } },
        ['ssh.submitCommand'],
      ],
      [
        'a status command without {id}',
        { runner: 'ssh', ssh: { ...SSH, statusCommand: 'sacct' } },
        ['ssh.statusCommand'],
      ],
      ['pollSeconds 0', { runner: 'ssh', ssh: { ...SSH, pollSeconds: 0 } }, ['ssh.pollSeconds']],
      ['an unknown ssh field', { runner: 'ssh', ssh: { ...SSH, password: 'x' } }, ['ssh.password']],
    ])('refuses %s with a 400 naming the field, and stores nothing', async (_, change, fields) => {
      const before = await deviceRows();
      const res = await request(http)
        .post('/api/v1/devices')
        .set(roles.admin)
        .send({ ...valid, ...change });
      expectProblem(res, 400, fields);
      expect(await deviceRows()).toEqual(before);
    });

    it('names every unknown service key in the 400', async () => {
      const res = await request(http)
        .post('/api/v1/devices')
        .set(roles.admin)
        .send({ ...valid, services: ['echo', 'nope-1', 'nope-2'] });
      expectProblem(res, 400, ['services']);
      expect(res.body.detail).toContain('nope-1, nope-2');
      expect(res.body.detail).not.toContain('echo');
    });

    it('names the first five unknown keys and counts the rest (the list may be 20 KB)', async () => {
      const services = Array.from({ length: 200 }, (_, i) => `nope-${i}-${'x'.repeat(90)}`);
      const res = await request(http)
        .post('/api/v1/devices')
        .set(roles.admin)
        .send({ ...valid, services });
      expectProblem(res, 400, ['services']);
      expect(res.body.detail).toContain(`${services.slice(0, 5).join(', ')} and 195 more;`);
      expect(res.body.detail).not.toContain(services[5]);
    });
  });

  describe('changes', () => {
    it('updates the fields an admin may change, audited, and clears the location with null', async () => {
      const { id, body } = await createDevice(http, roles.admin, { location: 'old room' });
      const res = await request(http)
        .patch(`/api/v1/devices/${id}`)
        .set(roles.admin)
        .send({
          name: `${body.name}-renamed`,
          services: ['echo'],
          slots: 4,
          labels: { gpu: 'a100' },
          adminState: 'maintenance',
          location: null,
        })
        .expect(200);
      expect(res.body).toMatchObject({
        id,
        name: `${body.name}-renamed`,
        services: ['echo'],
        slots: 4,
        labels: { gpu: 'a100' },
        adminState: 'maintenance',
        kind: 'workstation',
        runner: 'agent',
      });
      expect(res.body.location).toBeUndefined();
      expect(new Date(res.body.updatedAt).getTime()).toBeGreaterThan(
        new Date(body.updatedAt).getTime(),
      );
      expect(await get(id)).toMatchObject({ slots: 4, adminState: 'maintenance' });
      expect((await get(id)).location).toBeUndefined();
      expect((await auditActions(id)).map((a) => a.action)).toEqual([
        'device.create',
        'device.update',
      ]);
    });

    it('replaces the ssh settings of an ssh device, and refuses them for another runner', async () => {
      const sshDevice = await createDevice(http, roles.admin, { runner: 'ssh', ssh: SSH });
      const changed = await request(http)
        .patch(`/api/v1/devices/${sshDevice.id}`)
        .set(roles.admin)
        .send({ ssh: { ...SSH, host: 'login2.hpc.example.org', port: 2222 } })
        .expect(200);
      expect(changed.body.ssh).toMatchObject({ host: 'login2.hpc.example.org', port: 2222 });

      const agent = await createDevice(http, roles.admin);
      const before = await deviceRows();
      const refused = await request(http)
        .patch(`/api/v1/devices/${agent.id}`)
        .set(roles.admin)
        .send({ ssh: SSH });
      expectProblem(refused, 400, ['ssh']);
      const removed = await request(http)
        .patch(`/api/v1/devices/${sshDevice.id}`)
        .set(roles.admin)
        .send({ ssh: null });
      expectProblem(removed, 400, ['ssh']);
      expect(await deviceRows()).toEqual(before);
    });

    it('refuses invalid changes with field errors and changes nothing', async () => {
      const { id } = await createDevice(http, roles.admin);
      const other = await createDevice(http, roles.admin);
      const before = await deviceRows();
      const patch = (body: object) =>
        request(http).patch(`/api/v1/devices/${id}`).set(roles.admin).send(body);
      expectProblem(await patch({ slots: 0 }), 400, ['slots']);
      expectProblem(await patch({ services: ['nope'] }), 400, ['services']);
      expectProblem(await patch({ adminState: 'asleep' }), 400, ['adminState']);
      expectProblem(await patch({ kind: 'gpu' }), 400, ['kind']);
      expectProblem(await patch({ runner: 'local' }), 400, ['runner']);
      expectProblem(await patch({ name: other.body.name }), 409);
      expect(await deviceRows()).toEqual(before);
    });

    it('rotates the token: the old one is refused at once, the new one works', async () => {
      const { id, token } = await createDevice(http, roles.admin);
      await heartbeat(http, token);
      const rotated = await request(http)
        .post(`/api/v1/devices/${id}/rotate-token`)
        .set(roles.admin)
        .expect(200);
      const fresh = rotated.body.token as string;
      expect(fresh).toMatch(/^lgd_/);
      expect(fresh).not.toBe(token);
      expect(rotated.body).toMatchObject({ id, tokenHint: fresh.slice(0, 8) });

      const old = await request(http)
        .post('/api/v1/agent/heartbeat')
        .set(deviceHeaders(token))
        .send({});
      expectProblem(old, 401);
      expect((await heartbeat(http, fresh)).deviceId).toBe(id);
      const row = (await db.query(`select token_hash from device where id = $1`, [id])).rows[0];
      expect(row.token_hash).toBe(sha256(fresh));
      expect((await auditActions(id)).map((a) => a.action)).toEqual([
        'device.create',
        'device.rotate_token',
      ]);
    });

    it('deletes an idle device (its token stops working), audited', async () => {
      const { id, token } = await createDevice(http, roles.admin);
      await request(http).delete(`/api/v1/devices/${id}`).set(roles.admin).expect(204);
      expectProblem(await request(http).get(`/api/v1/devices/${id}`).set(roles.admin), 404);
      expectProblem(
        await request(http).post('/api/v1/agent/heartbeat').set(deviceHeaders(token)).send({}),
        401,
      );
      expect((await auditActions(id)).map((a) => a.action)).toEqual([
        'device.create',
        'device.delete',
      ]);
    });

    it('refuses to delete a device with active jobs (409) and says what to do', async () => {
      const { id } = await createDevice(http, roles.admin);
      const res = await withActiveJobs(id, 2, () =>
        request(http).delete(`/api/v1/devices/${id}`).set(roles.admin),
      );
      expectProblem(res, 409);
      expect(res.body.detail).toMatch(/2 active job/);
      expect(res.body.detail).toMatch(/disable/i);
      expect(res.body.detail).toMatch(/cancel/i);
      await get(id);
      expect((await auditActions(id)).map((a) => a.action)).toEqual(['device.create']);
    });

    it('answers 404 for an unknown device and 400 for a malformed id', async () => {
      expectProblem(await request(http).get(`/api/v1/devices/${UNKNOWN_ID}`).set(roles.admin), 404);
      expectProblem(
        await request(http).patch(`/api/v1/devices/${UNKNOWN_ID}`).set(roles.admin).send({}),
        404,
      );
      expectProblem(
        await request(http).delete(`/api/v1/devices/${UNKNOWN_ID}`).set(roles.admin),
        404,
      );
      expectProblem(
        await request(http).post(`/api/v1/devices/${UNKNOWN_ID}/rotate-token`).set(roles.admin),
        404,
      );
      for (const res of [
        await request(http).get('/api/v1/devices/not-a-uuid').set(roles.admin),
        await request(http).patch('/api/v1/devices/not-a-uuid').set(roles.admin).send({}),
        await request(http).delete('/api/v1/devices/not-a-uuid').set(roles.admin),
        await request(http).post('/api/v1/devices/not-a-uuid/rotate-token').set(roles.admin),
      ]) {
        expectProblem(res, 400, ['id']);
      }
    });

    it('announces created, updated, deleted and up on DeviceEvents', async () => {
      const seen: DeviceChange[] = [];
      const subscription = app.app.get(DeviceEvents).changes$.subscribe((c) => seen.push(c));
      try {
        const { id, token } = await createDevice(http, roles.admin);
        await request(http)
          .patch(`/api/v1/devices/${id}`)
          .set(roles.admin)
          .send({ slots: 2 })
          .expect(200);
        await heartbeat(http, token); // first ever: up
        await heartbeat(http, token); // already up: nothing
        await db.query(`update device set down_since = now() where id = $1`, [id]);
        await heartbeat(http, token); // found DOWN before: up again
        await request(http).delete(`/api/v1/devices/${id}`).set(roles.admin).expect(204);
        expect(seen.filter((c) => c.deviceId === id).map((c) => c.reason)).toEqual([
          'created',
          'updated',
          'up',
          'up',
          'deleted',
        ]);
        const row = await db.query(`select 1 from device where id = $1`, [id]);
        expect(row.rowCount).toBe(0);
      } finally {
        subscription.unsubscribe();
      }
    });
  });

  describe('observed state', () => {
    it('is IDLE after a heartbeat, BUSY with active jobs, DOWN once silent too long', async () => {
      const { id, token } = await createDevice(http, roles.admin);
      expect((await get(id)).state).toBe('DOWN');

      const reply = await heartbeat(http, token, {
        status: 'recording',
        metrics: { temperature: 21.5 },
        runningJobs: [UNKNOWN_ID],
      });
      // DEVICE_DOWN_AFTER_SECONDS 2: a third of it, at least a second.
      expect(reply).toEqual({
        deviceId: id,
        name: expect.any(String),
        heartbeatSeconds: 1,
        commands: [],
      });
      const idle = await get(id);
      expect(idle).toMatchObject({
        state: 'IDLE',
        reportedStatus: 'recording',
        reportedMetrics: { temperature: 21.5 },
        runningJobs: [UNKNOWN_ID],
      });
      expect(Date.now() - new Date(idle.lastHeartbeatAt).getTime()).toBeLessThan(2000);

      await withActiveJobs(id, 1, async () => {
        expect(await get(id)).toMatchObject({ state: 'BUSY', activeJobs: 1 });
      });

      await db.query(
        `update device set last_heartbeat_at = now() - interval '3 seconds' where id = $1`,
        [id],
      );
      expect((await get(id)).state).toBe('DOWN');
      const row = (await db.query(`select * from device where id = $1`, [id])).rows[0];
      expect(Object.keys(row)).not.toContain('state');
    });
  });

  describe('listing', () => {
    const list = async (query: Record<string, string | number>, who = roles.operator) =>
      (await request(http).get('/api/v1/devices').query(query).set(who).expect(200)).body as {
        items: Array<{ id: string; name: string; state: string }>;
        nextCursor?: string;
      };
    const ids = (page: { items: Array<{ id: string }> }) => page.items.map((d) => d.id);

    it('pages through every device in name order with no gaps or repeats', async () => {
      for (const name of ['zz-page-c', 'zz-page-a', 'zz-page-b']) {
        await createDevice(http, roles.admin, { name });
      }
      const all = (await list({ limit: 200 })).items;
      expect(all.map((d) => d.name)).toEqual([...all.map((d) => d.name)].sort());
      const names = all.map((d) => d.name);
      expect(names.indexOf('zz-page-a')).toBeLessThan(names.indexOf('zz-page-b'));

      const walked: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await list(cursor ? { limit: 2, cursor } : { limit: 2 });
        expect(page.items.length).toBeLessThanOrEqual(2);
        walked.push(...ids(page));
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      expect(walked).toEqual(all.map((d) => d.id));
      expect(pages).toBe(Math.ceil(all.length / 2));
    });

    it('filters by kind, service (devices offering * included) and admin state', async () => {
      const gpu = await createDevice(http, roles.admin, { kind: 'gpu', services: ['echo'] });
      const any = await createDevice(http, roles.admin, { kind: 'enclosure', services: ['*'] });
      const add = await createDevice(http, roles.admin, { kind: 'gpu', services: ['float-add'] });

      const gpus = await list({ kind: 'gpu', limit: 200 });
      expect(ids(gpus)).toEqual(expect.arrayContaining([gpu.id, add.id]));
      expect(ids(gpus)).not.toContain(any.id);
      expect(gpus.items.every((d) => (d as unknown as { kind: string }).kind === 'gpu')).toBe(true);

      const echo = ids(await list({ service: 'echo', limit: 200 }));
      expect(echo).toEqual(expect.arrayContaining([gpu.id, any.id]));
      expect(echo).not.toContain(add.id);

      await request(http)
        .patch(`/api/v1/devices/${add.id}`)
        .set(roles.admin)
        .send({ adminState: 'disabled' })
        .expect(200);
      expect(ids(await list({ state: 'disabled', limit: 200 }))).toEqual([add.id]);
      expect(ids(await list({ state: 'enabled', limit: 200 }))).not.toContain(add.id);
    });

    it('filters by observed state IDLE, BUSY and DOWN', async () => {
      const idle = await createDevice(http, roles.admin);
      const busy = await createDevice(http, roles.admin);
      const silent = await createDevice(http, roles.admin);
      await heartbeat(http, idle.token);
      await heartbeat(http, busy.token);
      await withActiveJobs(busy.id, 1, async () => {
        const [idles, busies, downs] = await Promise.all(
          ['IDLE', 'BUSY', 'DOWN'].map(async (state) => ids(await list({ state, limit: 200 }))),
        );
        expect(idles).toContain(idle.id);
        expect(idles).not.toContain(busy.id);
        expect(busies).toEqual([busy.id]);
        expect(downs).toContain(silent.id);
        expect(downs).not.toContain(idle.id);
        expect(downs).not.toContain(busy.id);
      });
    });

    it('refuses unknown filters and a forged cursor with field errors', async () => {
      const get400 = async (query: Record<string, string>, field: string) =>
        expectProblem(
          await request(http).get('/api/v1/devices').query(query).set(roles.operator),
          400,
          [field],
        );
      await get400({ state: 'ASLEEP' }, 'state');
      await get400({ kind: 'toaster' }, 'kind');
      await get400({ limit: '0' }, 'limit');
      await get400({ cursor: 'not-a-cursor' }, 'cursor');
      await get400({ colour: 'red' }, 'colour');
    });
  });

  describe('access', () => {
    it('lets operators read devices but not change them, and plain users not even read', async () => {
      const { id } = await createDevice(http, roles.admin);
      const before = await deviceRows();
      const body = { name: 'x-1', kind: 'gpu', runner: 'agent', services: ['*'], slots: 1 };
      for (const who of [roles.user, roles.operator]) {
        expectProblem(await request(http).post('/api/v1/devices').set(who).send(body), 403);
        expectProblem(
          await request(http).patch(`/api/v1/devices/${id}`).set(who).send({ slots: 3 }),
          403,
        );
        expectProblem(await request(http).delete(`/api/v1/devices/${id}`).set(who), 403);
        expectProblem(await request(http).post(`/api/v1/devices/${id}/rotate-token`).set(who), 403);
      }
      expectProblem(await request(http).get('/api/v1/devices').set(roles.user), 403);
      expectProblem(await request(http).get(`/api/v1/devices/${id}`).set(roles.user), 403);
      expect(await deviceRows()).toEqual(before);

      await request(http).get('/api/v1/devices').set(roles.operator).expect(200);
      await request(http).get(`/api/v1/devices/${id}`).set(roles.operator).expect(200);
      await request(http).get(`/api/v1/devices/${id}`).set(roles.admin).expect(200);
    });

    it('refuses user credentials on agent routes and device tokens everywhere else (401)', async () => {
      const { token } = await createDevice(http, roles.admin);
      expectProblem(
        await request(http).post('/api/v1/agent/heartbeat').set(roles.admin).send({}),
        401,
      );
      expectProblem(await request(http).post('/api/v1/agent/heartbeat').send({}), 401);
      expectProblem(await request(http).get('/api/v1/jobs').set(deviceHeaders(token)), 401);
      expectProblem(await request(http).get('/api/v1/devices').set(deviceHeaders(token)), 401);
    });

    it('refuses a heartbeat with an unknown device token (401) and registers nothing', async () => {
      const before = await deviceRows();
      const res = await request(http)
        .post('/api/v1/agent/heartbeat')
        .set(deviceHeaders(`lgd_${'x'.repeat(43)}`))
        .send({ status: 'hello' });
      expectProblem(res, 401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(await deviceRows()).toEqual(before);
    });
  });
});
