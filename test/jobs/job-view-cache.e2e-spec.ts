import type { Server } from 'node:http';
import request from 'supertest';
import { JobViewCache } from '../../src/jobs/job-view-cache';
import { bearer, mintAccessToken } from '../support/auth';
import { queryRows } from '../support/database';
import { testServicesDir } from '../support/services.fixture';
import { startTestApp, TestApp } from '../support/test-app';

/**
 * GET /jobs/:id serves job views from memory while the API process LISTENs to PostgreSQL's
 * notifications of job changes. To see where an answer came from, a test changes a row with
 * the job table's trigger disabled: PostgreSQL then notifies nobody, so an unchanged answer
 * was served from memory and a changed one was read from the database.
 */
describe('jobs: job views kept in memory, dropped on every change', () => {
  let app: TestApp;
  let http: Server;
  let alice: Record<string, string>;

  beforeAll(async () => {
    // No worker: submitted jobs stay queued, and only this test changes them.
    app = await startTestApp({ SERVICES_DIR: testServicesDir(), ROLE: 'api' });
    http = app.app.getHttpServer();
    alice = bearer(
      await mintAccessToken(app, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 }),
    );
  });
  afterAll(() => app.close());

  const sql = <T = unknown>(text: string, params: unknown[] = []) =>
    queryRows<T>(app.database.url, text, params);

  /** Changes the job's priority without a notification (the trigger is off meanwhile). */
  const quietly = async (id: string, priority: number) => {
    await sql(`alter table job disable trigger job_changed_notify`);
    try {
      await sql(`update job set priority = $2 where id = $1`, [id, priority]);
    } finally {
      await sql(`alter table job enable trigger job_changed_notify`);
    }
  };

  const submit = async () => {
    const res = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .send({ service: 'echo', inputs: { message: 'hi' } })
      .expect(201);
    return { id: res.body.id as string, ticket: res.body.token as string };
  };

  const priorityOf = async (job: { id: string; ticket: string }) =>
    (await request(http).get(`/api/v1/jobs/${job.id}`).set('X-Job-Token', job.ticket).expect(200))
      .body.priority as number;

  /** Polls `check` (every 10 ms, at most 10 s): a notification arrives on its own connection. */
  const eventually = async (check: () => Promise<boolean> | boolean, what: string) => {
    for (const until = Date.now() + 10_000; !(await check());) {
      if (Date.now() > until) {
        throw new Error(`timed out waiting until ${what}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };

  const cache = () => app.app.get(JobViewCache);

  /** A view read (and kept) while the cache listens. */
  const cached = async (job: { id: string; ticket: string }) => {
    await priorityOf(job);
    await eventually(() => cache().active, 'the cache listens');
    return priorityOf(job);
  };

  it('answers from memory until PostgreSQL notifies a change, whoever made it', async () => {
    const job = await submit();
    expect(await cached(job)).toBe(0);
    await quietly(job.id, 5);
    expect(await priorityOf(job)).toBe(0);
    // Another connection changes the job, as a worker process or the CLI would.
    await sql(`update job set priority = 7 where id = $1`, [job.id]);
    await eventually(async () => (await priorityOf(job)) === 7, 'the change is seen');
    // Deleted rows go too: the ticket then finds nothing.
    await sql(`delete from job where id = $1`, [job.id]);
    await eventually(
      async () =>
        (await request(http).get(`/api/v1/jobs/${job.id}`).set('X-Job-Token', job.ticket))
          .status === 404,
      'the deletion is seen',
    );
  });

  it("shows the caller's own change at once (cancel, then read)", async () => {
    const job = await submit();
    await cached(job);
    await request(http).post(`/api/v1/jobs/${job.id}/cancel`).set(alice).expect(200);
    const res = await request(http).get(`/api/v1/jobs/${job.id}`).set('X-Job-Token', job.ticket);
    expect(res.body.status).toBe('cancelled');
  });

  it('keeps nothing from a read that a change overtook', async () => {
    const job = await submit();
    await cached(job);
    const views = cache() as JobViewCache<{ n: number }>;
    const id = '00000000-0000-4000-8000-00000000000a';
    const overtaken = await views.read(id, () => {
      views.invalidate(id); // the change lands while the row is on its way
      return Promise.resolve({ n: 1 });
    });
    expect(overtaken).toEqual({ n: 1 });
    expect(await views.read(id, () => Promise.resolve({ n: 2 }))).toEqual({ n: 2 });
    expect(await views.read(id, () => Promise.resolve({ n: 3 }))).toEqual({ n: 2 });
  });

  it('reads PostgreSQL while its LISTEN connection is gone, then listens again', async () => {
    const job = await submit();
    expect(await cached(job)).toBe(0);
    await quietly(job.id, 3);
    expect(await priorityOf(job)).toBe(0);
    const [killed] = await sql<{ done: boolean }>(
      `select pg_terminate_backend(pid) as done from pg_stat_activity
        where application_name = 'labgate change feed' and datname = current_database()`,
    );
    expect(killed?.done).toBe(true);
    await eventually(() => !cache().active, 'the cache notices');
    // Whatever it kept may have missed notifications: all gone, the database answers.
    expect(await priorityOf(job)).toBe(3);
    await quietly(job.id, 4);
    expect(await priorityOf(job)).toBe(4);
    // Back after its first retry (1 s), it answers from memory again.
    await eventually(async () => (await priorityOf(job)) >= 0 && cache().active, 'it listens');
    expect(await priorityOf(job)).toBe(4);
    await quietly(job.id, 6);
    expect(await priorityOf(job)).toBe(4);
  });
});

describe('jobs: JOB_VIEW_CACHE_SIZE=0 reads every job view from PostgreSQL', () => {
  it('sees a change no notification announced', async () => {
    const app = await startTestApp({
      SERVICES_DIR: testServicesDir(),
      ROLE: 'api',
      JOB_VIEW_CACHE_SIZE: '0',
    });
    try {
      const http = app.app.getHttpServer();
      const alice = bearer(
        await mintAccessToken(app, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 }),
      );
      const { body } = await request(http)
        .post('/api/v1/jobs')
        .set(alice)
        .send({ service: 'echo', inputs: { message: 'hi' } })
        .expect(201);
      const get = async () =>
        (await request(http).get(`/api/v1/jobs/${body.id}`).set('X-Job-Token', body.token)).body
          .priority as number;
      expect(await get()).toBe(0);
      expect(await get()).toBe(0);
      await queryRows(app.database.url, `alter table job disable trigger job_changed_notify`);
      await queryRows(app.database.url, `update job set priority = 9 where id = $1`, [body.id]);
      expect(await get()).toBe(9);
      expect(app.app.get(JobViewCache).active).toBe(false);
    } finally {
      await app.close();
    }
  });
});
