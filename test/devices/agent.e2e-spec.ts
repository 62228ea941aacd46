import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { AgentProcess } from '../support/agent-process';
import { createDevice, Headers, roleHeaders, ROLE_ENV, RoleHeaders } from '../support/devices';
import { baseUrl, followEvents, untar } from '../support/jobs';
import { testServicesDir } from '../support/services.fixture';
import { TcpProxy } from '../support/tcp-proxy';
import { startTestApp, TestApp } from '../support/test-app';

jest.setTimeout(60_000);

const FINAL = ['succeeded', 'failed', 'cancelled', 'expired'];

/** True once the process no longer runs: gone, or a zombie waiting for init to reap it. */
function isDead(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

async function waitUntil<T>(what: string, probe: () => Promise<T | undefined> | T | undefined) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Ids from the agent's `claimed <id> (<service>)` lines. */
function claimedBy(agent: AgentProcess): Set<string> {
  return new Set([...agent.output.matchAll(/claimed (\S+) \(/g)].map((m) => m[1]));
}

describe('device agent: the reference agent runs jobs placed on its device', () => {
  let app: TestApp;
  let http: Server;
  let url: string;
  let roles: RoleHeaders;
  let servicesDir: string;
  const workDirs: string[] = [];
  const agents: AgentProcess[] = [];
  /** A offers echo, float-add, fail, sleep, bad-metrics; B echo and ticker (not installed). */
  let a: { id: string; token: string; agent: AgentProcess; workDir: string };
  let b: { id: string; token: string; agent: AgentProcess; workDir: string };

  function startAgent(token: string, services: string, extra: { once?: boolean } = {}) {
    const workDir = mkdtempSync(join(tmpdir(), 'labgate-agent-work-'));
    workDirs.push(workDir);
    const agent = new AgentProcess({ url, token, services, workDir, ...extra });
    agents.push(agent);
    return { agent, workDir };
  }

  async function waitUp(deviceId: string) {
    await waitUntil(`device ${deviceId} up`, async () => {
      const res = await request(http).get(`/api/v1/devices/${deviceId}`).set(roles.admin);
      return res.body.state !== 'DOWN' || undefined;
    });
  }

  beforeAll(async () => {
    servicesDir = testServicesDir();
    // Exits 0 with metrics its result schema refuses: labgate turns the completion down.
    writeFileSync(
      join(servicesDir, 'bad-metrics.yaml'),
      `key: bad-metrics
title: Bad metrics
description: Reports a metric of the wrong type.
version: 1.0.0
inputs: []
resultSchema:
  type: object
  properties:
    sum: { type: number }
  required: [sum]
run:
  command: [node, -e, "require('fs').writeFileSync('outputs/metrics.json', JSON.stringify({ sum: 'many' }))"]
retentionDays: 1
`,
    );
    app = await startTestApp({
      ...ROLE_ENV,
      SERVICES_DIR: servicesDir,
      LOCAL_DEVICE: 'false',
      DEVICE_DOWN_AFTER_SECONDS: '5',
    });
    await app.app.listen(0, '127.0.0.1');
    http = app.app.getHttpServer();
    url = baseUrl(http);
    roles = await roleHeaders(app);

    const deviceA = await createDevice(http, roles.admin, {
      name: 'enclosure-a',
      services: ['echo', 'float-add', 'fail', 'sleep', 'bad-metrics'],
    });
    const deviceB = await createDevice(http, roles.admin, {
      name: 'enclosure-b',
      services: ['echo', 'ticker'],
    });
    // B's agent has every service but ticker: labgate thinks B offers it, B cannot run it.
    const servicesB = mkdtempSync(join(tmpdir(), 'labgate-agent-services-'));
    workDirs.push(servicesB);
    cpSync(servicesDir, servicesB, { recursive: true });
    rmSync(join(servicesB, 'ticker.yaml'));

    a = { ...deviceA, ...startAgent(deviceA.token, servicesDir) };
    b = { ...deviceB, ...startAgent(deviceB.token, servicesB) };
    await Promise.all([a.agent.waitFor(/agent started/), b.agent.waitFor(/agent started/)]);
    await Promise.all([waitUp(a.id), waitUp(b.id)]);
  });

  afterAll(async () => {
    await Promise.all(agents.map((agent) => agent.stop()));
    await app?.close();
    for (const dir of [servicesDir, ...workDirs]) {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const user = (): Headers => roles.user;

  async function submit(body: Record<string, unknown>): Promise<string> {
    const res = await request(http).post('/api/v1/jobs').set(user()).send(body).expect(201);
    return res.body.id as string;
  }

  /** Follows the job's events to its end, then reads it. */
  async function finished(id: string) {
    await followEvents(`${url}/api/v1/jobs/${id}/events`, user());
    const job = await request(http).get(`/api/v1/jobs/${id}`).set(user()).expect(200);
    expect(FINAL).toContain(job.body.status);
    return job.body;
  }

  async function resultFiles(id: string) {
    const res = await request(http)
      .get(`/api/v1/jobs/${id}/result`)
      .set(user())
      .buffer(true)
      .parse((r, done) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => done(null, Buffer.concat(chunks)));
      })
      .expect(200);
    return untar(res.body as Buffer);
  }

  const agentOf = (deviceId: string) => (deviceId === a.id ? a : b);

  it('runs echo on an agent: succeeded, with the message and the file in the result', async () => {
    const res = await request(http)
      .post('/api/v1/jobs')
      .set(user())
      .field('service', 'echo')
      .field('message', 'hello from the enclosure')
      .attach('file', Buffer.from('some bytes'), 'notes.txt')
      .expect(201);
    const id = res.body.id as string;
    const job = await finished(id);
    expect(job).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect([a.id, b.id]).toContain(job.deviceId);

    const files = await resultFiles(id);
    expect(files['message.txt'].toString()).toBe('hello from the enclosure');
    expect(files['notes.txt'].toString()).toBe('some bytes');
    const log = await request(http).get(`/api/v1/jobs/${id}/log`).set(user()).expect(200);
    expect(log.text).toContain('copied notes.txt');

    const ran = agentOf(job.deviceId);
    await ran.agent.waitFor(new RegExp(`completed ${id}`));
    expect(ran.agent.output).toContain(`claimed ${id} (echo)`);
    expect(readdirSync(ran.workDir)).toEqual([]); // the job's work dir is gone
  });

  it('runs float-add on an agent and reports its metrics', async () => {
    const id = await submit({ service: 'float-add', inputs: { a: 1.5, b: 2.25 } });
    const job = await finished(id);
    expect(job).toMatchObject({ status: 'succeeded', deviceId: a.id, metrics: { sum: 3.75 } });
    expect(JSON.parse((await resultFiles(id))['metrics.json'].toString())).toEqual({ sum: 3.75 });
    await a.agent.waitFor(new RegExp(`completed ${id}`));
  });

  it('fails a job whose program exits non-zero, with the reason', async () => {
    const id = await submit({ service: 'fail', inputs: {} });
    const job = await finished(id);
    expect(job.status).toBe('failed');
    expect(job.reason).toMatch(/exited with code 3/);
    await a.agent.waitFor(new RegExp(`failed ${id}: exited with code 3`));
  });

  it("fails a job whose metrics labgate refuses, with labgate's reason", async () => {
    const id = await submit({ service: 'bad-metrics', inputs: {} });
    const job = await finished(id);
    expect(job).toMatchObject({ status: 'failed', deviceId: a.id });
    expect(job.reason).toMatch(/labgate refused the result: .*sum/);
    expect(job.metrics).toBeUndefined();
    await a.agent.waitFor(new RegExp(`failed ${id}: labgate refused the result`));
  });

  it('fails a job of a service its agent does not have, saying so', async () => {
    const id = await submit({ service: 'ticker', inputs: {} });
    const job = await finished(id);
    expect(job).toMatchObject({ status: 'failed', deviceId: b.id });
    expect(job.reason).toMatch(/service "ticker" is not installed on this device/);
    await b.agent.waitFor(new RegExp(`failed ${id}: service "ticker" is not installed`));
  });

  it('stops a cancelled job: the stop command is acknowledged and the program is gone', async () => {
    // sleep's timeout is 3 s: the cancel has to land well before it.
    const id = await submit({ service: 'sleep', inputs: { seconds: 60 } });
    await a.agent.waitFor(new RegExp(`claimed ${id} \\(sleep\\)`));
    const pidFile = join(a.workDir, id, 'outputs', 'pid');
    const pid = await waitUntil('the program pid', () =>
      existsSync(pidFile) && readFileSync(pidFile, 'utf8')
        ? Number(readFileSync(pidFile, 'utf8'))
        : undefined,
    );
    expect(isDead(pid)).toBe(false);

    await request(http).post(`/api/v1/jobs/${id}/cancel`).set(user()).expect(200);
    await a.agent.waitFor(new RegExp(`stopped ${id}`));
    const command = await waitUntil('the acknowledged stop command', async () => {
      const res = await request(http).get(`/api/v1/devices/${a.id}/commands`).set(roles.admin);
      return (res.body.items as Array<{ args: { jobId?: string }; state: string }>).find(
        (c) => c.args.jobId === id && c.state !== 'pending' && c.state !== 'delivered',
      );
    });
    expect(command).toMatchObject({ type: 'stop', state: 'acknowledged', message: 'stopped' });
    expect(isDead(pid)).toBe(true);
    expect(existsSync(join(a.workDir, id))).toBe(false);

    const job = await request(http).get(`/api/v1/jobs/${id}`).set(user()).expect(200);
    expect(job.body.status).toBe('cancelled');
    expect(a.agent.output).not.toMatch(new RegExp(`(completed|failed|dropped) ${id}`));
  });

  it("gives two agents only their own devices' jobs, each job claimed once", async () => {
    const ids = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        submit({ service: 'echo', inputs: { message: `m${i}` } }),
      ),
    );
    const jobs = await Promise.all(ids.map((id) => finished(id)));
    expect(jobs.map((j) => j.status)).toEqual(ids.map(() => 'succeeded'));
    await Promise.all(
      ids.map((id, i) => agentOf(jobs[i].deviceId).agent.waitFor(new RegExp(`completed ${id}`))),
    );

    const byA = ids.filter((id) => claimedBy(a.agent).has(id));
    const byB = ids.filter((id) => claimedBy(b.agent).has(id));
    expect(byA.filter((id) => byB.includes(id))).toEqual([]);
    expect([...byA, ...byB].sort()).toEqual([...ids].sort());
    expect(byA.length).toBeGreaterThan(0);
    expect(byB.length).toBeGreaterThan(0);
    jobs.forEach((job, i) => {
      expect(job.deviceId).toBe(byA.includes(ids[i]) ? a.id : b.id);
    });
    for (const [i, id] of ids.entries()) {
      expect((await resultFiles(id))['message.txt'].toString()).toBe(`m${i}`);
    }
  });

  it('with --once, runs one job placed on its device and exits 0', async () => {
    const device = await createDevice(http, roles.admin, {
      name: 'node-once',
      services: ['float-add'],
    });
    const once = startAgent(device.token, servicesDir, { once: true });
    await waitUp(device.id);
    const res = await request(http)
      .post('/api/v1/jobs')
      .set(user())
      .send({ service: 'float-add', inputs: { a: 2, b: 3 }, targets: [device.id] })
      .expect(201);
    const id = res.body.jobs[0].id as string;
    const job = await finished(id);
    expect(job).toMatchObject({ status: 'succeeded', deviceId: device.id, metrics: { sum: 5 } });
    expect(await once.agent.exited).toEqual({ code: 0, signal: null });
    expect(once.agent.output).toContain(`completed ${id}`);
  });

  it('rides out labgate being unreachable, then carries on', async () => {
    const proxy = await new TcpProxy(Number(new URL(url).port)).start();
    const device = await createDevice(http, roles.admin, {
      name: 'node-far',
      services: ['float-add'],
    });
    const far = new AgentProcess({
      url: `http://127.0.0.1:${proxy.port}`,
      token: device.token,
      services: servicesDir,
      workDir: mkdtempSync(join(tmpdir(), 'labgate-agent-work-')),
    });
    agents.push(far);
    workDirs.push(far.workDir!);
    try {
      await waitUp(device.id);
      await proxy.cut();
      await far.waitFor(/heartbeat failed: .*next try in/);
      await far.waitFor(/claim failed: .*next try in/);
      await proxy.restore();
      const res = await request(http)
        .post('/api/v1/jobs')
        .set(user())
        .send({ service: 'float-add', inputs: { a: 1, b: 1 }, targets: [device.id] })
        .expect(201);
      const job = await finished(res.body.jobs[0].id as string);
      expect(job).toMatchObject({ status: 'succeeded', deviceId: device.id, metrics: { sum: 2 } });
      expect(far.child.exitCode).toBeNull();
    } finally {
      await far.stop();
      await proxy.cut();
    }
  });

  it('exits 1 when its device token is refused (rotated)', async () => {
    await request(http).post(`/api/v1/devices/${b.id}/rotate-token`).set(roles.admin).expect(200);
    await b.agent.waitFor(/the device token was refused \(rotated\?\)/);
    expect(await b.agent.exited).toEqual({ code: 1, signal: null });
  });

  it('exits 0 on SIGTERM', async () => {
    expect(await a.agent.stop()).toEqual({ code: 0, signal: null });
    expect(a.agent.output).toMatch(/stopping \(SIGTERM\)/);
  });
});
