import Redis from 'ioredis';
import request from 'supertest';
import { DeviceQueues } from '../../src/jobs/scheduling/device-queues';
import { JobScheduler } from '../../src/jobs/scheduling/job-scheduler';
import { bearer, mintAccessToken } from '../support/auth';
import { LabgateProcess } from '../support/labgate-process';
import {
  addLiveLocalDevice,
  addSlowFinishService,
  jobEventRows,
  SLOW_FINISH,
  waitUntil,
  workerEnvironment,
} from '../support/recovery';
import { testServicesDir } from '../support/services.fixture';
import { startTestApp, TestApp } from '../support/test-app';

async function aliceOf(app: TestApp) {
  return bearer(
    await mintAccessToken(app, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 }),
  );
}

describe('shutdown: a scheduling pass under way when the app closes', () => {
  let app: TestApp | undefined;
  afterAll(() => app?.dispose());

  it('hands its placement to the device queue before the queues close', async () => {
    app = await startTestApp({ SERVICES_DIR: testServicesDir(), ROLE: 'api' });
    const http = app.app.getHttpServer();
    const alice = await aliceOf(app);
    // No device yet: the job waits in PostgreSQL.
    const { body } = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .send({ service: 'float-add', inputs: { a: 1, b: 2 } })
      .expect(201);
    const id = body.id as string;
    const deviceId = await addLiveLocalDevice(app.config.database.url!);

    // A pass starts, and the app is told to close while it places the job (as on SIGTERM).
    app.app.get(JobScheduler).kick();
    await app.app.close();

    const events = await jobEventRows(app.config.database.url!, id);
    expect(events.map((e) => e.state)).toEqual(['queued', 'assigned']);
    // Handed to the device's Bull queue, not left for a worker's reconciler (30 s later).
    const redis = new Redis(app.config.redis.url!);
    try {
      const key = `${app.config.redis.prefix}:${DeviceQueues.queueName(deviceId)}:${id}:1`;
      expect(await redis.exists(key)).toBe(1);
    } finally {
      redis.disconnect();
    }
  });
});

describe('shutdown: a worker stopped with SIGTERM while it runs a job', () => {
  let app: TestApp;
  let worker: LabgateProcess | undefined;

  beforeAll(async () => {
    const servicesDir = testServicesDir();
    addSlowFinishService(servicesDir);
    app = await startTestApp({ SERVICES_DIR: servicesDir, ROLE: 'api' });
  });
  afterAll(async () => {
    await worker?.stop();
    await app?.close();
  });

  it('lets the job finish, then exits cleanly', async () => {
    const http = app.app.getHttpServer();
    const alice = await aliceOf(app);
    worker = new LabgateProcess('worker', workerEnvironment(app.config));
    await worker.waitFor(/worker started/);
    const { body } = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .send({ service: SLOW_FINISH, inputs: { seconds: 2 } })
      .expect(201);
    const id = body.id as string;
    await waitUntil(
      'the job to run on the worker',
      async () => {
        const job = await request(http).get(`/api/v1/jobs/${id}`).set(alice).expect(200);
        return job.body.status === 'running' && job.body.progress >= 10;
      },
      { timeoutMs: 20_000, intervalMs: 25 },
    );

    worker.child.kill('SIGTERM');
    const exit = await worker.exited;
    expect({ ...exit, output: exit.code === 0 ? '' : worker.output }).toEqual({
      code: 0,
      signal: null,
      output: '',
    });

    const job = await request(http).get(`/api/v1/jobs/${id}`).set(alice).expect(200);
    expect(job.body).toMatchObject({ status: 'succeeded', attempts: 1 });
    const events = await jobEventRows(app.config.database.url!, id);
    expect(events.map((e) => e.state)).toEqual(['queued', 'assigned', 'running', 'succeeded']);
    expect(worker.output).toMatch(/SIGTERM: shutting down/);
  }, 60_000);
});
