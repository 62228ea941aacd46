import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from 'pg';
import request from 'supertest';
import { JobsWorker } from '../../src/jobs/jobs.worker';
import { JobScheduler } from '../../src/jobs/scheduling/job-scheduler';
import { bearer, mintAccessToken } from '../support/auth';
import { PrivateRedis } from '../support/chaos/private-redis';
import { untar } from '../support/jobs';
import { addLiveLocalDevice, waitUntil } from '../support/recovery';
import { testServicesDir } from '../support/services.fixture';
import { startTestApp, TestApp } from '../support/test-app';

const FINAL = ['succeeded', 'failed', 'cancelled', 'expired'];

describe('a job that starts while Redis is down', () => {
  let redis: PrivateRedis;
  let app: TestApp | undefined;
  let device: string | undefined;
  let redisUp = true;

  beforeAll(async () => {
    // A Redis of this file's own: the test stops it.
    redis = await PrivateRedis.start();
    const servicesDir = testServicesDir();
    writeFileSync(
      join(servicesDir, 'hold-file.yaml'),
      `key: hold-file
title: Hold a file
description: Runs until stopped; for cancel tests.
version: 1.0.0
inputs:
  - { name: file, type: file }
run:
  command: [node, -e, "setInterval(() => {}, 1000)"]
  timeoutSeconds: 30
retentionDays: 1
`,
    );
    app = await startTestApp({
      SERVICES_DIR: servicesDir,
      ROLE: 'all',
      REDIS_URL: redis.url,
      LOCAL_DEVICE: 'false',
    });
  });
  afterAll(async () => {
    if (!redisUp) {
      await redis.start(); // back, so that the app closes as usual
    }
    await app?.close();
    await redis.stop();
  }, 60_000);

  const jobRow = async (id: string) => {
    // Straight from PostgreSQL: the API's own calls should not depend on Redis here.
    const client = new Client({ connectionString: app!.config.database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ state: string; attempts: number; reason: string }>(
        'select state, attempts, reason from job where id = $1',
        [id],
      );
      return rows[0];
    } finally {
      await client.end();
    }
  };

  /**
   * Submits a job whose stored input is then made a FIFO: the run's start (copying its inputs)
   * waits on it, so that Redis can be stopped at that very moment, after Bull handed the run
   * out. Returns the job and what lets the run go on.
   */
  const startWithRedisDown = async (service: string, fields: Record<string, string>) => {
    const http = app!.app.getHttpServer();
    const alice = bearer(
      await mintAccessToken(app!, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 }),
    );
    let submit = request(http).post('/api/v1/jobs').set(alice).field('service', service);
    for (const [name, value] of Object.entries(fields)) {
      submit = submit.field(name, value);
    }
    const { body } = await submit
      .attach('file', Buffer.from('some bytes'), 'notes.txt')
      .expect(201);
    const id = body.id as string;
    const input = join(app!.config.storageDir, 'jobs', id, 'inputs', 'file', 'notes.txt');
    rmSync(input);
    expect(spawnSync('mkfifo', [input]).status).toBe(0);

    // Now a device for it (there was none: the job waited in PostgreSQL).
    device ??= await addLiveLocalDevice(app!.config.database.url!);
    await app!.app.get(JobsWorker).sync();
    app!.app.get(JobScheduler).kick();
    await waitUntil('the run to start', async () => (await jobRow(id)).state === 'running', {
      timeoutMs: 20_000,
      intervalMs: 25,
    });
    await redis.shutdown();
    redisUp = false;
    return { id, token: body.token as string, goOn: () => writeFile(input, 'some bytes') };
  };

  const ended = (id: string) =>
    waitUntil(
      'the job to end',
      async () => {
        const row = await jobRow(id);
        return FINAL.includes(row.state) && row;
      },
      { timeoutMs: 40_000, intervalMs: 100 },
    );

  it('runs without the live cancel subscription and succeeds', async () => {
    const { id, goOn } = await startWithRedisDown('echo', { message: 'hello' });
    await goOn(); // the run reads its input and goes on
    expect(await ended(id)).toMatchObject({ state: 'succeeded', attempts: 1 });
    const files = untar(readFileSync(join(app!.config.storageDir, 'jobs', id, 'result.tar.gz')));
    expect(files['message.txt'].toString()).toBe('hello');
  }, 90_000);

  it('is still cancelled: PostgreSQL is asked while the subscription is missing', async () => {
    await redis.start(); // Bull needs it to hand the run out
    redisUp = true;
    const { id, token, goOn } = await startWithRedisDown('hold-file', {});
    await goOn();
    const workDir = join(app!.config.varDir, 'work', `${id}.1`);
    await waitUntil('the program to run', () =>
      Promise.resolve(existsSync(join(workDir, '.labgate-pids'))),
    );
    // The cancel cannot reach the run over Redis: PostgreSQL tells it within a poll.
    await request(app!.app.getHttpServer())
      .post(`/api/v1/jobs/${id}/cancel`)
      .set('X-Job-Token', token)
      .expect(200);
    expect(await jobRow(id)).toMatchObject({ state: 'cancelled' });
    // Within a poll (5 s), far sooner than its 30 s timeout would end it.
    await waitUntil(
      'the run to end its program and clean up',
      () => Promise.resolve(!existsSync(workDir)),
      { timeoutMs: 10_000, intervalMs: 50 },
    );
  }, 90_000);
});
