import type { Server } from 'node:http';
import { hostname } from 'node:os';
import type { INestApplicationContext } from '@nestjs/common';
import request from 'supertest';
import { DeviceQueues } from '../../src/jobs/scheduling/device-queues';
import { JobsWorker } from '../../src/jobs/jobs.worker';
import { bearer, mintAccessToken } from '../support/auth';
import { untar } from '../support/jobs';
import { LabgateProcess } from '../support/labgate-process';
import {
  addLiveLocalDevice,
  addSlowFinishService,
  ageJobs,
  countRedisKeys,
  jobEventRows,
  SLOW_FINISH,
  waitUntil,
  workerEnvironment,
} from '../support/recovery';
import { clearRedisPrefix } from '../support/redis';
import { testServicesDir } from '../support/services.fixture';
import { startTestApp, startTestWorker, TestApp } from '../support/test-app';

const FINAL = ['succeeded', 'failed', 'cancelled', 'expired'];

interface JobBody {
  id: string;
  status: string;
  reason?: string;
  progress: number;
  attempts: number;
  inputs: Record<string, unknown>;
  metrics?: Record<string, unknown>;
}

async function aliceOf(app: TestApp) {
  return bearer(
    await mintAccessToken(app, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 }),
  );
}

describe('recovery: a worker killed with SIGKILL mid-job', () => {
  let app: TestApp;
  let http: Server;
  let alice: Record<string, string>;
  const workers: LabgateProcess[] = [];

  beforeAll(async () => {
    const servicesDir = testServicesDir();
    addSlowFinishService(servicesDir);
    app = await startTestApp({ SERVICES_DIR: servicesDir, ROLE: 'api' });
    http = app.app.getHttpServer();
    alice = await aliceOf(app);
  });
  afterAll(async () => {
    // Workers first: dropping the database under a connected worker would only add noise.
    await Promise.all(workers.map((w) => w.stop()));
    await app?.close();
  });

  const spawnWorker = async () => {
    // A 1 s job lock (STALLED_JOB_CHECK_SECONDS) instead of 30 s: a lost job is re-run quickly.
    const worker = new LabgateProcess(
      'worker',
      workerEnvironment(app.config, { STALLED_JOB_CHECK_SECONDS: '1' }),
    );
    workers.push(worker);
    await worker.waitFor(/worker started/);
    return worker;
  };

  const getJob = async (id: string): Promise<JobBody> =>
    (await request(http).get(`/api/v1/jobs/${id}`).set(alice).expect(200)).body as JobBody;

  it('still finishes the job after a restart, never running it twice at once', async () => {
    const first = await spawnWorker();
    const submitted = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      // Short on purpose: the runner puts the program in its own process group, so it outlives a
      // SIGKILLed worker (it is not killed when the job is handed to the next worker).
      .send({ service: SLOW_FINISH, inputs: { seconds: 2 } })
      .expect(201);
    const id = submitted.body.id as string;

    // The program's own progress line has been recorded: the first attempt is surely under way.
    await waitUntil(
      'the job to run on the first worker',
      async () => {
        const job = await getJob(id);
        return job.status === 'running' && job.progress >= 10;
      },
      { timeoutMs: 20_000, intervalMs: 25 },
    );
    first.child.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect((await getJob(id)).status).toBe('running'); // PostgreSQL does not know yet

    const second = await spawnWorker();
    // Bull hands the job out again once the dead worker's lock expires (lockDuration, 30 s).
    const done = await waitUntil(
      'the job to end on the second worker',
      async () => {
        const job = await getJob(id);
        return FINAL.includes(job.status) && job;
      },
      { timeoutMs: 90_000, intervalMs: 100 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n--- second worker ---\n${second.output}`);
    });

    expect(done).toMatchObject({
      status: 'succeeded',
      attempts: 2,
      progress: 100,
      metrics: { pid: expect.any(Number) },
    });
    const events = await jobEventRows(app.config.database.url!, id);
    // The job stays on its device: the second worker runs it again there.
    expect(events.map((e) => e.state)).toEqual([
      'queued',
      'assigned',
      'running',
      'running',
      'succeeded',
    ]);
    const firstWorker = `worker:${hostname()}:${first.child.pid}`;
    const secondWorker = `worker:${hostname()}:${second.child.pid}`;
    expect(events.slice(1).map((e) => e.actor)).toEqual([
      'scheduler',
      firstWorker,
      secondWorker,
      secondWorker,
    ]);
    // The second worker took the job back only after the first was dead, and said why.
    expect(events[3]).toMatchObject({
      previousState: 'running',
      reason: expect.stringMatching(/worker lost during attempt 1/),
    });
    expect(events[3].at.getTime()).toBeGreaterThanOrEqual(killedAt);

    const result = await request(http)
      .get(`/api/v1/jobs/${id}/result`)
      .set(alice)
      .buffer(true)
      .parse((res, callback) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => callback(null, Buffer.concat(chunks)));
      })
      .expect(200);
    expect(untar(result.body as Buffer)['done.txt'].toString()).toBe('done');
  }, 120_000);
});

describe('recovery: Redis keys lost while jobs are queued', () => {
  let app: TestApp;
  let http: Server;
  let alice: Record<string, string>;
  let worker: INestApplicationContext | undefined;

  beforeAll(async () => {
    app = await startTestApp({ SERVICES_DIR: testServicesDir(), ROLE: 'api' });
    http = app.app.getHttpServer();
    alice = await aliceOf(app);
  });
  afterAll(async () => {
    await worker?.close();
    await app?.close();
  });

  it('hands every placed job over again from PostgreSQL, and all of them finish', async () => {
    const prefix = app.config.redis.prefix;
    // A device that looks alive: the API places the jobs on its Bull queue before any worker.
    const deviceId = await addLiveLocalDevice(app.config.database.url!, 10);
    const inputs = Array.from({ length: 10 }, (_, i) => ({ a: i + 0.25, b: i * 2 }));
    const ids: string[] = [];
    for (const values of inputs) {
      const submitted = await request(http)
        .post('/api/v1/jobs')
        .set(alice)
        .send({ service: 'float-add', inputs: values })
        .expect(201);
      // Placed as it is stored when no other pass is under way, else by the next pass.
      expect(['queued', 'assigned']).toContain(submitted.body.status);
      ids.push(submitted.body.id as string);
    }
    await waitUntil(
      'all ten jobs to be placed',
      async () => {
        const states = await Promise.all(
          ids.map(async (id) => (await request(http).get(`/api/v1/jobs/${id}`).set(alice)).body),
        );
        return states.every((j: JobBody) => j.status === 'assigned');
      },
      { timeoutMs: 15_000, intervalMs: 50 },
    );
    expect(await countRedisKeys(prefix)).toBeGreaterThan(0);

    // FLUSHALL for this installation alone (other test files share this Redis).
    await clearRedisPrefix(prefix);
    expect(await countRedisKeys(prefix)).toBe(0);

    // The reconciler leaves placements younger than 5 s alone (they may still be on their way
    // into Redis from the scheduler); rather than wait those 5 s, make the rows 10 s older, as
    // if the time had passed. Then the worker's boot-time reconcile hands them all over again.
    expect(await ageJobs(app.config.database.url!, 10)).toBe(10);
    worker = await startTestWorker(app.config.with({ role: 'worker' }));

    const jobs = await waitUntil(
      'all ten jobs to end',
      async () => {
        const all = await Promise.all(
          ids.map(async (id) => {
            const res = await request(http).get(`/api/v1/jobs/${id}`).set(alice).expect(200);
            return res.body as JobBody;
          }),
        );
        return all.every((j) => FINAL.includes(j.status)) && all;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    expect(jobs.map((j) => j.status)).toEqual(ids.map(() => 'succeeded'));
    jobs.forEach((job, i) => {
      expect(job.inputs).toEqual(inputs[i]);
      expect(job.metrics).toEqual({ sum: inputs[i].a + inputs[i].b });
      expect(job.attempts).toBe(1);
    });
    // Nothing is left for the reconciler, and finished jobs have left Redis.
    expect(await worker.get(JobsWorker).reconcile()).toBe(0);
    // (Bull removes a finished run just after the job's final state is committed.)
    const queues = worker.get(DeviceQueues);
    await waitUntil(
      'the finished runs to leave Redis',
      async () => {
        const held = await Promise.all(
          ids.map((id) => queues.holds({ jobId: id, deviceId, assignment: 1 })),
        );
        return held.every((h) => !h);
      },
      { timeoutMs: 5_000, intervalMs: 50 },
    );
  }, 60_000);
});
