import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { JobState } from '../../src/jobs/job-state';
import { JobsService } from '../../src/jobs/jobs.service';
import { queryRows as sql } from '../support/database';
import { bearer } from '../support/auth';
import { createDevice, ROLE_ENV, roleHeaders, type RoleHeaders } from '../support/devices';
import { untar } from '../support/jobs';
import { waitUntil } from '../support/recovery';
import { testServicesDir } from '../support/services.fixture';
import { startTestApp, TestApp } from '../support/test-app';

const FINAL = ['succeeded', 'failed', 'cancelled', 'expired'];

/**
 * `stubborn`: notes `start <pid>` in a ledger, reports PROGRESS 10 and, 5 s later, writes
 * outputs/done.txt (its pid) and notes `done`. On SIGTERM it notes `term`, skips the outputs and
 * takes 3 s to exit: an old attempt still winding down while the job's next one runs.
 */
function addStubbornService(servicesDir: string, ledger: string): void {
  const script = [
    "const fs = require('fs');",
    `const note = (what) => fs.appendFileSync(${JSON.stringify(ledger)}, what + ' ' + process.pid + '\\n');`,
    "note('start');",
    'let stopped = false;',
    "process.on('SIGTERM', () => { stopped = true; note('term'); setTimeout(() => process.exit(143), 3000); });",
    "console.log('PROGRESS 10 working');",
    "setTimeout(() => { if (!stopped) { fs.writeFileSync('outputs/done.txt', String(process.pid)); note('done'); process.exit(0); } }, 5000);",
  ].join(' ');
  writeFileSync(
    join(servicesDir, 'stubborn.yaml'),
    `key: stubborn
title: Stubborn
description: Slow to stop; for requeue tests.
version: 1.0.0
inputs: []
run:
  command: [node, -e, ${JSON.stringify(script)}]
  timeoutSeconds: 60
retry:
  attempts: 1
retentionDays: 1
`,
  );
}

describe(`${JobsService.name}.requeue`, () => {
  let app: TestApp;
  let http: Server;
  let roles: RoleHeaders;
  const scratch = mkdtempSync(join(tmpdir(), 'labgate-requeue-'));
  const ledger = join(scratch, 'ledger.txt');

  beforeAll(async () => {
    const servicesDir = testServicesDir();
    addStubbornService(servicesDir, ledger);
    // Two slots on the workers' local device: a requeued job can start again on the other one.
    app = await startTestApp({
      ...ROLE_ENV,
      SERVICES_DIR: servicesDir,
      ROLE: 'all',
      WORKER_CONCURRENCY: '2',
    });
    http = app.app.getHttpServer();
    roles = await roleHeaders(app);
  });
  afterAll(async () => {
    await app?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  const job = async (id: string) =>
    (await request(http).get(`/api/v1/jobs/${id}`).set(roles.user).expect(200)).body as {
      status: string;
      progress: number;
      attempts: number;
      reason?: string;
    };
  const requeue = (id: string, from: JobState[]) =>
    app.app
      .get(JobsService)
      .requeue(id, { from, actor: 'system:test', reason: 'put back by the test' });

  it('runs the next attempt in a work directory of its own while the old one winds down', async () => {
    const { body } = await request(http)
      .post('/api/v1/jobs')
      .set(roles.user)
      .send({ service: 'stubborn', inputs: {} })
      .expect(201);
    const id = body.id as string;
    await waitUntil(
      'the first attempt to run its program',
      async () => {
        const now = await job(id);
        return now.status === 'running' && now.progress >= 10;
      },
      { timeoutMs: 20_000, intervalMs: 25 },
    );
    // Not from a state it is not in.
    expect(await requeue(id, [JobState.Assigned])).toBeUndefined();
    expect((await job(id)).status).toBe('running');

    const moved = await requeue(id, [JobState.Running]);
    expect(moved?.state).toBe(JobState.Queued);

    const done = await waitUntil(
      'the job to end',
      async () => {
        const now = await job(id);
        return FINAL.includes(now.status) && now;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    expect(done).toMatchObject({ status: 'succeeded', attempts: 2 });
    // The first program was told to stop (and did not finish); the second ran to its end.
    const notes = readFileSync(ledger, 'utf8').trim().split('\n');
    const [first, second] = [...new Set(notes.map((n) => n.split(' ')[1]))];
    expect(notes).toEqual(
      expect.arrayContaining([`start ${first}`, `term ${first}`, `start ${second}`]),
    );
    expect(notes).not.toContain(`done ${first}`);
    expect(notes.at(-1)).toBe(`done ${second}`);
    const result = await request(http)
      .get(`/api/v1/jobs/${id}/result`)
      .set(roles.user)
      .buffer(true)
      .parse((res, callback) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => callback(null, Buffer.concat(chunks)));
      })
      .expect(200);
    expect(untar(result.body as Buffer)['done.txt'].toString()).toBe(second);
    // Both attempts cleaned up after themselves.
    await waitUntil('the work directories removed', () =>
      Promise.resolve(readdirSync(join(app.varDir, 'work')).length === 0),
    );
  }, 60_000);

  it('sends an agent a stop for the run it claimed, and none for a job it never claimed', async () => {
    const agent = await createDevice(http, roles.admin, { services: ['echo'] });
    const device = bearer(agent.token);
    await request(http).post('/api/v1/agent/heartbeat').set(device).send({}).expect(200);
    const { body } = await request(http)
      .post('/api/v1/jobs')
      .set(roles.user)
      .send({ service: 'echo', inputs: { message: 'hi' }, targets: [agent.id] })
      .expect(201);
    const id = body.jobs[0].id as string;
    const placement = (assignment: number) =>
      waitUntil(`placement ${assignment} on the agent`, async () => {
        const [row] = await sql<{ state: string; assignment: number }>(
          app.database.url,
          'select state, assignment from job where id = $1',
          [id],
        );
        return row.state === 'assigned' && row.assignment === assignment;
      });
    const stops = () =>
      sql<{ args: { jobId: string }; issued_by: string }>(
        app.database.url,
        `select args, issued_by from device_command where device_id = $1 and type = 'stop'`,
        [agent.id],
      );

    await placement(1);
    expect((await requeue(id, [JobState.Assigned]))?.state).toBe(JobState.Queued);
    // Placed again, possibly on the same agent: a stop now would end that next attempt.
    expect(await stops()).toEqual([]);

    await placement(2);
    const claimed = await request(http)
      .post('/api/v1/agent/jobs/claim')
      .query({ wait: 1 })
      .set(device)
      .expect(200);
    expect(claimed.body.id).toBe(id);
    expect((await requeue(id, [JobState.Running]))?.state).toBe(JobState.Queued);
    expect(await stops()).toEqual([{ args: { jobId: id }, issued_by: 'system' }]);
    await request(http).post(`/api/v1/jobs/${id}/cancel`).set(roles.user).expect(200);
  });
});
