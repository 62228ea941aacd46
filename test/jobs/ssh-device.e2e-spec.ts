import type { Server } from 'node:http';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import request from 'supertest';
import { createDevice, deviceHeaders, roleHeaders, ROLE_ENV } from '../support/devices';
import { waitUntil } from '../support/recovery';
import { testServicesDir } from '../support/services.fixture';
import type { SshSettings } from '../../src/devices/device.entity';
import { sshSettings, startSshd, TestSshd } from '../support/sshd';
import { startTestApp, TestApp } from '../support/test-app';

jest.setTimeout(90_000);

/** An HPC device end to end: the API places the job, a worker submits it over SSH. */
describe('SSH runner devices (a real OpenSSH server and a fake Slurm on loopback)', () => {
  let app: TestApp;
  let http: Server;
  let sshd: TestSshd;
  let roles: Awaited<ReturnType<typeof roleHeaders>>;
  let remoteRoot: string;

  beforeAll(async () => {
    sshd = await startSshd();
    remoteRoot = mkdtempSync(join(tmpdir(), 'labgate-cluster-'));
    app = await startTestApp({
      ...ROLE_ENV,
      SERVICES_DIR: testServicesDir(),
      ROLE: 'all',
      LOCAL_DEVICE: 'false',
    });
    http = app.app.getHttpServer();
    roles = await roleHeaders(app);
  });
  afterAll(async () => {
    await app?.close();
    await sshd?.stop();
    rmSync(remoteRoot, { recursive: true, force: true });
  });

  const ssh = (overrides: Partial<SshSettings> = {}) => sshSettings(sshd, remoteRoot, overrides);

  const finished = (id: string) =>
    waitUntil(
      `job ${id} to end`,
      async () => {
        const job = (await request(http).get(`/api/v1/jobs/${id}`).set(roles.admin)).body;
        return ['succeeded', 'failed', 'cancelled'].includes(job.status) && job;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );

  it('submits over SSH, polls the cluster, and brings back metrics and outputs', async () => {
    const device = await createDevice(http, roles.admin, {
      kind: 'hpc',
      runner: 'ssh',
      services: ['float-add'],
      ssh: ssh(),
    });
    const { id } = (
      await request(http)
        .post('/api/v1/jobs')
        .set(roles.user)
        .send({ service: 'float-add', inputs: { a: 1.5, b: 2 } })
        .expect(201)
    ).body;
    const job = await finished(id);
    expect(job).toMatchObject({ status: 'succeeded', metrics: { sum: 3.5 }, deviceId: device.id });
    await request(http).get(`/api/v1/jobs/${id}/result`).set(roles.user).expect(200);
  });

  it('refuses a host whose key does not match the registered fingerprint', async () => {
    await createDevice(http, roles.admin, {
      kind: 'hpc',
      runner: 'ssh',
      services: ['echo'],
      ssh: ssh({ hostFingerprint: `SHA256:${'A'.repeat(43)}` }),
    });
    const { id } = (
      await request(http)
        .post('/api/v1/jobs')
        .set(roles.user)
        .send({ service: 'echo', inputs: { message: 'hi' } })
        .expect(201)
    ).body;
    const job = await finished(id);
    expect(job.status).toBe('failed');
    expect(job.reason).toMatch(/host key of 127\.0\.0\.1:\d+ is SHA256:\S+, expected SHA256:A{43}/);
  });

  it('waits for the cluster to call back with the device token when there is no status command', async () => {
    const device = await createDevice(http, roles.admin, {
      kind: 'hpc',
      runner: 'ssh',
      services: ['sleep'],
      ssh: ssh({ statusCommand: undefined }),
    });
    const { id } = (
      await request(http)
        .post('/api/v1/jobs')
        .set(roles.user)
        .send({ service: 'sleep', inputs: { seconds: 1 } })
        .expect(201)
    ).body;
    // Submitted: the job keeps its cluster id and stays running until the callback.
    const db = new Client({ connectionString: app.config.database.url });
    await db.connect();
    try {
      await waitUntil(
        'the cluster job id',
        async () =>
          (await db.query(`select external_id from job where id = $1`, [id])).rows[0]
            ?.external_id ?? false,
        { timeoutMs: 30_000, intervalMs: 100 },
      );
    } finally {
      await db.end();
    }
    expect((await request(http).get(`/api/v1/jobs/${id}`).set(roles.admin)).body.status).toBe(
      'running',
    );
    const callback = await request(http)
      .post(`/api/v1/agent/jobs/${id}/complete`)
      .set(deviceHeaders(device.token))
      .field('metrics', '{}')
      .attach('result', gzipSync(Buffer.alloc(512)), 'result.tar.gz')
      .expect(200);
    expect(callback.body).toEqual({ id, status: 'succeeded' });
    expect((await finished(id)).status).toBe('succeeded');
  });

  it('runs the cancel command on the cluster when a job nobody polls is cancelled', async () => {
    await createDevice(http, roles.admin, {
      kind: 'hpc',
      runner: 'ssh',
      services: ['ticker'],
      ssh: ssh({ statusCommand: undefined }),
    });
    const { id } = (
      await request(http)
        .post('/api/v1/jobs')
        .set(roles.user)
        .send({ service: 'ticker' })
        .expect(201)
    ).body;
    const db = new Client({ connectionString: app.config.database.url });
    await db.connect();
    let externalId: string;
    try {
      externalId = await waitUntil(
        'the cluster job id',
        async () =>
          ((await db.query(`select external_id from job where id = $1`, [id])).rows[0]
            ?.external_id as string | null) ?? false,
        { timeoutMs: 30_000, intervalMs: 100 },
      );
    } finally {
      await db.end();
    }
    await request(http).post(`/api/v1/jobs/${id}/cancel`).set(roles.user).expect(200);
    // The fake Slurm records each scancel; the job's state file then says CANCELLED.
    await waitUntil(
      'scancel on the cluster',
      () =>
        Promise.resolve(
          readFileSync(join(sshd.stateDir, `${externalId}.state`), 'utf8').trim() === 'CANCELLED',
        ),
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    expect(readFileSync(join(sshd.stateDir, 'scancel.calls'), 'utf8')).toContain(externalId);
  });
});
