import { existsSync, readFileSync, readdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import request from 'supertest';
import { RetentionService } from '../../src/jobs/retention.service';
import { bearer, mintAccessToken } from '../support/auth';
import { baseUrl, followEvents, untar } from '../support/jobs';
import { testServicesDir } from '../support/services.fixture';
import { startTestApp, TestApp } from '../support/test-app';

const SAMPLE_TRC = join(__dirname, '..', '..', 'services', 'model-scaling-demo', 'sample.trc');

describe('jobs: submit, run on a worker, observe, fetch the result', () => {
  let app: TestApp;
  let http: Server;
  let url: string;
  let alice: Record<string, string>;
  let bob: Record<string, string>;

  beforeAll(async () => {
    app = await startTestApp({ SERVICES_DIR: testServicesDir(), ROLE: 'all' });
    await app.app.listen(0, '127.0.0.1');
    http = app.app.getHttpServer();
    url = baseUrl(http);
    alice = bearer(
      await mintAccessToken(app, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 }),
    );
    bob = bearer(
      await mintAccessToken(app, { sub: 'bob', exp: Math.floor(Date.now() / 1000) + 3600 }),
    );
  });
  afterAll(() => app.close());

  const events = (id: string, headers: Record<string, string>) =>
    followEvents(`${url}/api/v1/jobs/${id}/events`, headers);

  const jobFiles = (id: string) => {
    const dir = join(app.config.storageDir, 'jobs', id);
    return existsSync(dir) ? readdirSync(dir, { recursive: true }) : [];
  };

  it('shows a job by id exactly as the listing shows it, whoever opens it', async () => {
    // GET /jobs/:id reads a plain row (no entity) because it is what clients poll; the
    // listing maps entities. Both must describe the job alike, in every field.
    const submitted = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .field('service', 'echo')
      .field('message', 'same either way')
      .attach('file', Buffer.from('abc'), 'a.txt')
      .expect(201);
    const id = submitted.body.id as string;
    await events(id, alice);
    const listed = (await request(http).get('/api/v1/jobs').set(alice).expect(200)).body.items.find(
      (j: { id: string }) => j.id === id,
    );
    const byOwner = (await request(http).get(`/api/v1/jobs/${id}`).set(alice).expect(200)).body;
    const byTicket = (
      await request(http)
        .get(`/api/v1/jobs/${id}`)
        .set('X-Job-Token', submitted.body.token)
        .expect(200)
    ).body;
    expect(byOwner).toEqual(listed);
    expect(byTicket).toEqual(listed);
    expect(byOwner).toMatchObject({
      status: 'succeeded',
      result: { size: expect.any(Number), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
      inputFiles: [expect.objectContaining({ filename: 'a.txt', size: 3 })],
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      finishedAt: expect.stringMatching(/Z$/),
    });
    await request(http).get(`/api/v1/jobs/${id}`).set(bob).expect(404);
    await request(http).get(`/api/v1/jobs/${id}`).set('X-Job-Token', 'lgt_wrong').expect(404);
  });

  it('runs echo from a multipart form and returns message and file in the tar.gz', async () => {
    const submitted = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .field('service', 'echo')
      .field('message', 'hello labgate')
      .attach('file', Buffer.from('some bytes'), 'notes.txt')
      .expect(201);
    expect(submitted.body).toMatchObject({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      token: expect.stringMatching(/^lgt_/),
      status: expect.stringMatching(/^(queued|assigned)$/),
      links: { self: `/api/v1/jobs/${submitted.body.id}` },
    });
    const seen = await events(submitted.body.id, alice);
    const states = seen.filter((e) => e.event === 'state').map((e) => e.data.state);
    expect(states[states.length - 1]).toBe('succeeded');
    expect(states.indexOf('running')).toBeLessThan(states.indexOf('succeeded'));

    const result = await request(http)
      .get(`/api/v1/jobs/${submitted.body.id}/result`)
      .set(alice)
      .buffer(true)
      .parse((res, done) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done(null, Buffer.concat(chunks)));
      })
      .expect(200);
    expect(result.headers['content-type']).toBe('application/gzip');
    expect(Number(result.headers['content-length'])).toBe((result.body as Buffer).length);
    const files = untar(result.body as Buffer);
    expect(files['message.txt'].toString()).toBe('hello labgate');
    expect(
      Object.entries(files).some(
        ([p, b]) => p.endsWith('notes.txt') && b.toString() === 'some bytes',
      ),
    ).toBe(true);

    const etag = result.headers.etag;
    await request(http)
      .get(`/api/v1/jobs/${submitted.body.id}/result`)
      .set(alice)
      .set('If-None-Match', etag)
      .expect(304);
    const job = await request(http).get(`/api/v1/jobs/${submitted.body.id}`).set(alice).expect(200);
    expect(job.body).toMatchObject({
      status: 'succeeded',
      progress: 100,
      attempts: 1,
      inputs: { message: 'hello labgate' },
    });
  });

  it('runs float-add from JSON and reports its metrics', async () => {
    const submitted = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .send({ service: 'float-add', inputs: { a: 1.5, b: 2.25 } })
      .expect(201);
    await events(submitted.body.id, alice);
    const job = await request(http).get(`/api/v1/jobs/${submitted.body.id}`).set(alice).expect(200);
    expect(job.body.status).toBe('succeeded');
    expect(job.body.metrics).toEqual({ sum: 3.75 });
  });

  it('runs model-scaling-demo on a TRC file, and fails with a reason on a malformed one', async () => {
    const good = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .field('service', 'model-scaling-demo')
      .field('height', '1.8')
      .field('mass', '72')
      .attach('trc', readFileSync(SAMPLE_TRC), 'walk.trc')
      .expect(201);
    const bad = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .field('service', 'model-scaling-demo')
      .field('height', '1.8')
      .field('mass', '72')
      .attach('trc', Buffer.from('not a trc file\n'), 'broken.trc')
      .expect(201);
    await Promise.all([events(good.body.id, alice), events(bad.body.id, alice)]);
    const done = await request(http).get(`/api/v1/jobs/${good.body.id}`).set(alice).expect(200);
    expect(done.body.status).toBe('succeeded');
    expect(done.body.metrics).toMatchObject({
      numFrames: expect.any(Number),
      numMarkers: expect.any(Number),
    });
    const failed = await request(http).get(`/api/v1/jobs/${bad.body.id}`).set(alice).expect(200);
    expect(failed.body.status).toBe('failed');
    expect(failed.body.reason).toMatch(/exit/i);
    const log = await request(http).get(`/api/v1/jobs/${bad.body.id}/log`).set(alice).expect(200);
    expect(log.text.length).toBeGreaterThan(0);
  });

  it.each([
    ['an unknown service', { service: 'no-such-service' }, 404, undefined],
    ['a missing input', { service: 'float-add', inputs: { a: 1 } }, 400, 'b'],
    ['an extra input', { service: 'float-add', inputs: { a: 1, b: 2, c: 3 } }, 400, 'c'],
    ['an ill-typed input', { service: 'float-add', inputs: { a: 'one', b: 2 } }, 400, 'a'],
    [
      'a bad choice',
      { service: 'model-scaling-demo', inputs: { height: 1.8, mass: 70, method: 'guess' } },
      400,
      'method',
    ],
  ])('refuses %s with a problem and stores nothing', async (_what, body, status, field) => {
    const before = await request(http).get('/api/v1/jobs').set(alice).expect(200);
    const res = await request(http).post('/api/v1/jobs').set(alice).send(body);
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    if (field) {
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
    const after = await request(http).get('/api/v1/jobs').set(alice).expect(200);
    expect(after.body.items.length).toBe(before.body.items.length);
  });

  it('refuses an oversized file with 413 and keeps no partial file', async () => {
    const big = Buffer.alloc(11 * 1024 * 1024, 1); // echo's file input takes 10 MiB
    const res = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .field('service', 'echo')
      .field('message', 'x')
      .attach('file', big, 'big.bin');
    expect(res.status).toBe(413);
    const storageJobs = join(app.config.storageDir, 'jobs');
    const leftovers = existsSync(storageJobs)
      ? readdirSync(storageJobs).filter((id) =>
          jobFiles(id).some((f) => String(f).includes('big.bin')),
        )
      : [];
    expect(leftovers).toEqual([]);
  });

  it('refuses a file with an extension the input does not accept', async () => {
    const res = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .field('service', 'model-scaling-demo')
      .field('height', '1.8')
      .field('mass', '72')
      .attach('trc', Buffer.from('x'), 'walk.csv');
    expect(res.status).toBe(400);
    expect(res.body.errors[0].field).toBe('trc');
  });

  it('opens a job with its ticket alone, and hides it (404) from everyone else', async () => {
    const submitted = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .send({ service: 'float-add', inputs: { a: 1, b: 1 } })
      .expect(201);
    const id = submitted.body.id as string;
    await request(http)
      .get(`/api/v1/jobs/${id}`)
      .set('X-Job-Token', submitted.body.token)
      .expect(200);
    await request(http)
      .get(`/api/v1/jobs/${id}`)
      .query({ token: submitted.body.token })
      .expect(200);
    await request(http).get(`/api/v1/jobs/${id}`).set(bob).expect(404);
    await request(http).get(`/api/v1/jobs/${id}`).expect(404);
    await request(http).get(`/api/v1/jobs/${id}`).set('X-Job-Token', 'lgt_wrong').expect(404);
    const list = await request(http).get('/api/v1/jobs').set(bob).expect(200);
    expect(list.body.items.map((j: { id: string }) => j.id)).not.toContain(id);
    await events(id, { 'X-Job-Token': submitted.body.token });
  });

  it('cancels a running job and kills its process', async () => {
    const submitted = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .send({ service: 'sleep', inputs: { seconds: 60 } })
      .expect(201);
    const id = submitted.body.id as string;
    const stream = events(id, alice);
    // Wait for the program's own progress line: then it is surely running.
    let running = false;
    for (let i = 0; i < 200 && !running; i++) {
      const job = await request(http).get(`/api/v1/jobs/${id}`).set(alice);
      running = job.body.status === 'running' && job.body.progress >= 10;
      if (!running) {
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    expect(running).toBe(true);
    await request(http).post(`/api/v1/jobs/${id}/cancel`).set(alice).expect(200);
    const seen = await stream;
    expect(seen[seen.length - 1].data.state).toBe('cancelled');
    await request(http).get(`/api/v1/jobs/${id}/result`).set(alice).expect(409);
    await request(http).post(`/api/v1/jobs/${id}/cancel`).set(alice).expect(409);
  });

  it('streams the log while the job runs with ?follow=1, each line once, until it ends', async () => {
    const submitted = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .send({ service: 'ticker', inputs: {} })
      .expect(201);
    const res = await fetch(`${url}/api/v1/jobs/${submitted.body.id}/log?follow=1`, {
      headers: alice,
    });
    expect(res.status).toBe(200);
    const text = await res.text(); // resolves when the server ends the stream: the job ended
    expect(text.trim().split('\n')).toEqual(['tick 0', 'tick 1', 'tick 2', 'tick 3', 'tick 4']);
    const job = await request(http).get(`/api/v1/jobs/${submitted.body.id}`).set(alice).expect(200);
    expect(job.body.status).toBe('succeeded');
    const tail = await request(http).get(`/api/v1/jobs/${submitted.body.id}/log?tail=7`).set(alice);
    expect(tail.text).toBe('tick 4\n');
  });

  it('fails a job that runs past its timeout', async () => {
    const submitted = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .send({ service: 'sleep', inputs: { seconds: 100 } })
      .expect(201);
    await events(submitted.body.id, alice);
    const job = await request(http).get(`/api/v1/jobs/${submitted.body.id}`).set(alice).expect(200);
    expect(job.body.status).toBe('failed');
    expect(job.body.reason).toMatch(/timed out/);
  });

  it('retries a failed job, and deletes a finished one', async () => {
    const submitted = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .send({ service: 'fail', inputs: {} })
      .expect(201);
    const id = submitted.body.id as string;
    await events(id, alice);
    const retried = await request(http).post(`/api/v1/jobs/${id}/retry`).set(alice).expect(200);
    expect(retried.body.status).toBe('queued');
    await events(id, alice);
    const job = await request(http).get(`/api/v1/jobs/${id}`).set(alice).expect(200);
    expect(job.body).toMatchObject({ status: 'failed', attempts: 2 });
    await request(http).delete(`/api/v1/jobs/${id}`).set(alice).expect(204);
    const gone = await request(http).get(`/api/v1/jobs/${id}`).set(alice).expect(200);
    expect(gone.body.status).toBe('expired');
    expect(jobFiles(id)).toEqual([]);
  });

  it('expires finished jobs past their service retention: files removed, state expired', async () => {
    const submitted = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .send({ service: 'float-add', inputs: { a: 1, b: 2 } })
      .expect(201);
    const id = submitted.body.id as string;
    await events(id, alice);
    expect(jobFiles(id).length).toBeGreaterThan(0);
    const retention = app.app.get(RetentionService);
    await retention.run();
    expect((await request(http).get(`/api/v1/jobs/${id}`).set(alice)).body.status).toBe(
      'succeeded',
    );
    const later = new Date(Date.now() + 400 * 24 * 3600_000); // past any example's retention
    expect(await retention.run(later)).toBeGreaterThan(0);
    const job = await request(http).get(`/api/v1/jobs/${id}`).set(alice).expect(200);
    expect(job.body.status).toBe('expired');
    expect(job.body.reason).toMatch(/retention/);
    expect(jobFiles(id)).toEqual([]);
    await request(http).get(`/api/v1/jobs/${id}/result`).set(alice).expect(409);
  });

  it('lists jobs newest first with keyset pagination', async () => {
    const all = await request(http)
      .get('/api/v1/jobs')
      .query({ limit: 200 })
      .set(alice)
      .expect(200);
    const pages: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await request(http)
        .get('/api/v1/jobs')
        .query({ limit: 2, ...(cursor ? { cursor } : {}) })
        .set(alice)
        .expect(200);
      pages.push(...page.body.items.map((j: { id: string }) => j.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(pages).toEqual(all.body.items.map((j: { id: string }) => j.id));
    expect(pages.length).toBeGreaterThan(3);
    await request(http).get('/api/v1/jobs').query({ cursor: 'garbage' }).set(alice).expect(400);
  });
});
