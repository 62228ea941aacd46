import type { Server } from 'node:http';
import Redis from 'ioredis';
import { Client } from 'pg';
import request from 'supertest';
import { bearer, mintAccessToken } from '../support/auth';
import { queryRows } from '../support/database';
import { addLiveLocalDevice, jobEventRows, waitUntil } from '../support/recovery';
import { testServicesDir } from '../support/services.fixture';
import { TEST_REDIS_URL } from '../support/services';
import { startTestApp, TestApp } from '../support/test-app';

const SCHEDULER_LOCK = `hashtext('labgate.scheduler')`;

/**
 * A submission places its jobs in its own transaction when no scheduling pass is under way:
 * the answer says `assigned` and the job is on its device's queue with no pass to wait for.
 * API only (no worker), so a placed job stays placed while the test looks.
 */
describe('jobs: placed as they are submitted', () => {
  let app: TestApp;
  let http: Server;
  let alice: Record<string, string>;
  let deviceId: string;
  let redis: Redis;
  const url = () => app.config.database.url!;

  beforeAll(async () => {
    app = await startTestApp({ SERVICES_DIR: testServicesDir(), ROLE: 'api' });
    http = app.app.getHttpServer();
    alice = bearer(
      await mintAccessToken(app, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 }),
    );
    deviceId = await addLiveLocalDevice(url(), 1);
    redis = new Redis(TEST_REDIS_URL);
  });
  afterAll(async () => {
    redis.disconnect();
    await app.close();
  });

  /** Frees the device's one slot: whatever was placed on it is cancelled. */
  afterEach(async () => {
    await queryRows(
      url(),
      `update job set state = 'cancelled', finished_at = now() where state not in
         ('succeeded', 'failed', 'cancelled', 'expired')`,
    );
    await queryRows(url(), `update device set active_jobs = 0`);
  });

  const submit = async () =>
    (
      await request(http)
        .post('/api/v1/jobs')
        .set(alice)
        .send({ service: 'float-add', inputs: { a: 1, b: 2 } })
        .expect(201)
    ).body as { id: string; status: string };

  const jobRow = async (id: string) =>
    (
      await queryRows<{ state: string; device_id: string | null }>(
        url(),
        `select state, device_id from job where id = $1`,
        [id],
      )
    )[0];

  const onDeviceQueue = async (jobId: string) =>
    (await redis.exists(`${app.config.redis.prefix}:device.${deviceId}:${jobId}:1`)) === 1;

  it('answers assigned and hands the job to its device when a slot is free', async () => {
    const job = await submit();
    expect(job.status).toBe('assigned');
    expect(await jobRow(job.id)).toEqual({ state: 'assigned', device_id: deviceId });
    const events = await jobEventRows(url(), job.id);
    expect(events.map((e) => [e.state, e.actor])).toEqual([
      ['queued', expect.any(String)],
      ['assigned', 'scheduler'],
    ]);
    await waitUntil('the job on its device queue', () => onDeviceQueue(job.id));

    // The one slot is taken: the next job waits, and says so.
    const next = await submit();
    expect(next.status).toBe('queued');
    expect(await jobRow(next.id)).toEqual({ state: 'queued', device_id: null });
  });

  it('answers queued while another pass holds the scheduler, and the next pass places it', async () => {
    const holder = new Client({ connectionString: url() });
    await holder.connect();
    try {
      await holder.query(`select pg_advisory_lock(${SCHEDULER_LOCK})`);
      const job = await submit();
      expect(job.status).toBe('queued');
      expect(await jobRow(job.id)).toEqual({ state: 'queued', device_id: null });
      await holder.query(`select pg_advisory_unlock(${SCHEDULER_LOCK})`);
      // The pass the submission asked for was waiting for the lock.
      await waitUntil('the job to be placed', async () => {
        return (await jobRow(job.id)).state === 'assigned';
      });
      await waitUntil('the job on its device queue', () => onDeviceQueue(job.id));
    } finally {
      await holder.end();
    }
  });

  it('stores the job once, without a placement, when placing it fails', async () => {
    // Placing writes the device's count; this makes that write fail, inside the submission's
    // transaction.
    await queryRows(
      url(),
      `create function refuse_device_update() returns trigger language plpgsql as $$
       begin raise exception 'device updates refused by the test'; end $$;
       create trigger refuse_device_update before update on device
         for each row execute function refuse_device_update();`,
    );
    let id: string;
    try {
      const job = await submit();
      id = job.id;
      expect(job.status).toBe('queued');
    } finally {
      await queryRows(
        url(),
        `drop trigger refuse_device_update on device; drop function refuse_device_update();`,
      );
    }
    const counts = await queryRows<{ jobs: number; events: number; audits: number }>(
      url(),
      `select (select count(*)::int from job where id = $1) as jobs,
              (select count(*)::int from job_event where job_id = $1) as events,
              (select count(*)::int from audit_event
                where target_id = $1::text and action = 'job.submit') as audits`,
      [id],
    );
    expect(counts[0]).toEqual({ jobs: 1, events: 1, audits: 1 });
    // With the device writable again, the next submission's pass places the older job first.
    const next = await submit();
    expect(next.status).toBe('queued');
    expect(await jobRow(id)).toEqual({ state: 'assigned', device_id: deviceId });
  });
});
