import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { ResultsFeed } from '../../src/results/results-feed';
import { roleHeaders, ROLE_ENV } from '../support/devices';
import { waitUntil } from '../support/recovery';
import {
  listResults,
  PLOT_BYTES,
  PLOTTER,
  resultsServicesDir,
  type SubmittedResult,
  userId,
} from '../support/results';
import { startTestApp, TestApp } from '../support/test-app';

type Headers = Record<string, string>;

/** Reads a response body as bytes, whatever its type. */
const bytes = (req: request.Test) =>
  req.buffer(true).parse((res, done) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => done(null, Buffer.concat(chunks)));
  });

describe('results from succeeded jobs, through the job outbox', () => {
  let app: TestApp;
  let http: Server;
  let roles: Awaited<ReturnType<typeof roleHeaders>>;
  let db: Client;
  let feed: ResultsFeed;
  let job: Record<string, unknown>;
  let result: SubmittedResult & { artifacts: Array<Record<string, unknown>>; jobId: string };

  beforeAll(async () => {
    // ROLE all: a worker runs the job on the local device, and the feed on its timer.
    app = await startTestApp({ ...ROLE_ENV, SERVICES_DIR: resultsServicesDir(), ROLE: 'all' });
    http = app.app.getHttpServer();
    roles = await roleHeaders(app);
    db = new Client({ connectionString: app.config.database.url });
    await db.connect();
    feed = app.app.get(ResultsFeed);
  });
  afterAll(async () => {
    await db?.end();
    await app?.close();
  });

  async function runJob(who: Headers): Promise<Record<string, unknown>> {
    const submitted = await request(http)
      .post('/api/v1/jobs')
      .set(who)
      .send({ service: PLOTTER, inputs: {} })
      .expect(201);
    return waitUntil(
      `job ${submitted.body.id} to succeed`,
      async () => {
        const res = await request(http).get(`/api/v1/jobs/${submitted.body.id}`).set(who);
        if (['failed', 'cancelled'].includes(res.body.status)) {
          throw new Error(`the job ${res.body.status}: ${res.body.reason}`);
        }
        return res.body.status === 'succeeded' ? (res.body as Record<string, unknown>) : undefined;
      },
      { timeoutMs: 20_000 },
    );
  }

  const resultOf = async (jobId: string, who: Headers) => {
    const res = await listResults(http, who, { owner: 'me', service: PLOTTER }).expect(200);
    return (res.body.items as Array<typeof result>).find((r) => r.jobId === jobId);
  };
  const artifact = (path: string, who: Headers = roles.user) =>
    bytes(request(http).get(`/api/v1/results/${result.id}/artifacts/${path}`).set(who));
  const resultRows = async (jobId: string) =>
    (await db.query('select id from result where job_id = $1', [jobId])).rowCount;

  it('turns a succeeded job into a private result in the worker, with no one draining it', async () => {
    job = await runJob(roles.user);
    result = await waitUntil(
      'the worker to create the result',
      () => resultOf(job.id as string, roles.user),
      {
        timeoutMs: 10_000,
      },
    );
    expect(result).toMatchObject({
      jobId: job.id,
      service: PLOTTER,
      serviceVersion: '1.2.0',
      ownerId: await userId(http, roles.user),
      deviceId: job.deviceId,
      metrics: { score: 0.93, name: 'plotter', labels: ['gpu'], model: { depth: 4 } },
      tags: [],
      visibility: 'private',
      status: 'published',
      executedAt: job.finishedAt,
    });
    expect(job.deviceId).toEqual(expect.stringMatching(/^[0-9a-f-]{36}$/));
    const base = `/api/v1/results/${result.id}/artifacts`;
    expect(
      [...result.artifacts].sort((a, b) => String(a.name).localeCompare(String(b.name))),
    ).toEqual([
      {
        name: 'metrics.json',
        size: expect.any(Number),
        mediaType: 'application/json',
        url: `${base}/metrics.json`,
      },
      { name: 'plots/a b.txt', size: 6, mediaType: 'text/plain', url: `${base}/plots/a%20b.txt` },
      { name: 'plots/loss.png', size: 5000, mediaType: 'image/png', url: `${base}/plots/loss.png` },
      { name: 'report.csv', size: 17, mediaType: 'text/csv', url: `${base}/report.csv` },
    ]);
    // Found by device and by metrics; invisible to others while private.
    const byDevice = await listResults(http, roles.user, { device: job.deviceId as string }).expect(
      200,
    );
    expect(byDevice.body.items.map((r: SubmittedResult) => r.id)).toEqual([result.id]);
    const byMetric = await listResults(http, roles.user, { filter: 'metrics.labels~gpu' }).expect(
      200,
    );
    expect(byMetric.body.items.map((r: SubmittedResult) => r.id)).toEqual([result.id]);
    await request(http).get(`/api/v1/results/${result.id}`).set(roles.other).expect(404);
    expect(
      (await db.query(`select action, actor_id from audit_event where target_id = $1`, [result.id]))
        .rows,
    ).toEqual([{ action: 'result.create', actor_id: null }]);
  });

  it('streams one file of the outputs by its nested name, plain or URL-encoded, with an ETag', async () => {
    const png = await artifact('plots/loss.png').expect(200);
    expect(png.headers['content-type']).toBe('image/png');
    expect(png.headers['content-length']).toBe('5000');
    expect(png.headers['content-disposition']).toMatch(/attachment; filename="loss.png"/);
    expect((png.body as Buffer).equals(PLOT_BYTES)).toBe(true);
    const encoded = await artifact('plots%2Floss.png').expect(200);
    expect((encoded.body as Buffer).equals(PLOT_BYTES)).toBe(true);
    expect((await artifact('plots/a%20b.txt').expect(200)).body.toString()).toBe('spaced');
    expect((await artifact('report.csv').expect(200)).body.toString()).toBe('epoch,loss\n1,0.5\n');
    await request(http)
      .get(`/api/v1/results/${result.id}/artifacts/plots/loss.png`)
      .set(roles.user)
      .set('If-None-Match', png.headers.etag)
      .expect(304);
    const missing = await artifact('plots/none.png').expect(404);
    expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
    await artifact('plots').expect(404);
    // Visibility holds on this read path too.
    await artifact('plots/loss.png', roles.other).expect(404);
    await artifact('plots/loss.png', {}).expect(404);
    await request(http)
      .patch(`/api/v1/results/${result.id}`)
      .set(roles.user)
      .send({ visibility: 'public' })
      .expect(200);
    expect(
      ((await artifact('plots/loss.png', {}).expect(200)).body as Buffer).equals(PLOT_BYTES),
    ).toBe(true);
  });

  it("keeps the outputs after the job's files are removed, and never makes a second result", async () => {
    await request(http)
      .delete(`/api/v1/jobs/${job.id as string}`)
      .set(roles.user)
      .expect(204);
    await request(http)
      .get(`/api/v1/jobs/${job.id as string}/result`)
      .set(roles.user)
      .expect(409);
    expect(((await artifact('plots/loss.png').expect(200)).body as Buffer).equals(PLOT_BYTES)).toBe(
      true,
    );
    expect(await feed.drain()).toBe(0);
    // Read again from the start (as after a lost cursor): still one result per job.
    await db.query(`update result_feed_cursor set position = 0`);
    expect(await feed.drain()).toBe(0);
    expect(await resultRows(job.id as string)).toBe(1);
  });

  it('moves its cursor only past events older than the settle window', async () => {
    const position = async () =>
      (
        await db.query<{ position: string }>(
          `select position from result_feed_cursor where name = 'results'`,
        )
      ).rows[0].position;
    await db.query(`update result_feed_cursor set position = 0`);
    await feed.drain();
    expect(await position()).toBe('0'); // every event is seconds old
    await db.query(`update job_event set at = at - interval '2 minutes'`);
    await feed.drain();
    const max = (await db.query<{ max: string }>('select max(id)::text as max from job_event'))
      .rows[0].max;
    expect(await position()).toBe(max);
  });

  it('skips an event it cannot use without stopping; a vanished archive leaves no artifacts', async () => {
    const owner = await userId(http, roles.user);
    const orphan = randomUUID();
    const expired = randomUUID();
    const running = randomUUID();
    const insert = (jobId: string, state: string, data: Record<string, unknown>) =>
      db.query(
        `insert into job_event (job_id, at, state, previous_state, actor, data)
         values ($1, now(), $2, 'running', 'worker:test', $3)`,
        [jobId, state, JSON.stringify(data)],
      );
    // The documented outbox contract (JobEventData): what the jobs module writes on success.
    await insert(orphan, 'succeeded', { ownerId: randomUUID(), service: PLOTTER });
    const malformed = randomUUID();
    await insert(malformed, 'succeeded', { ownerId: 'not-a-uuid', service: PLOTTER });
    await insert(expired, 'succeeded', {
      ownerId: owner,
      service: PLOTTER,
      serviceVersion: '1.2.0',
      metrics: { score: 0.5 },
      resultKey: `jobs/${expired}/result.tar.gz`,
      resultSize: 10,
      deviceId: 'not-a-uuid either',
      finishedAt: '2026-11-01T08:00:00.000Z',
    });
    await insert(running, 'running', { ownerId: owner, service: PLOTTER });
    expect(await feed.drain()).toBe(1);
    expect(await resultRows(orphan)).toBe(0);
    expect(await resultRows(malformed)).toBe(0);
    expect(await resultRows(running)).toBe(0);
    const made = await resultOf(expired, roles.user);
    expect(made).toMatchObject({
      jobId: expired,
      metrics: { score: 0.5 },
      artifacts: [],
      executedAt: '2026-11-01T08:00:00.000Z',
    });
    expect(made!.deviceId).toBeUndefined();
    await request(http)
      .get(`/api/v1/results/${made!.id}/artifacts/metrics.json`)
      .set(roles.user)
      .expect(404);
  });
});
