import { existsSync, readdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { bearer, mintAccessToken } from '../support/auth';
import { baseUrl, followEvents, untar } from '../support/jobs';
import { testServicesDir } from '../support/services.fixture';
import { rawTar } from '../support/tar-fixtures';
import { startTestApp, TestApp } from '../support/test-app';

describe('job submission: TOMAAT payloads and idempotency', () => {
  let app: TestApp;
  let http: Server;
  let alice: Record<string, string>;

  beforeAll(async () => {
    app = await startTestApp({ SERVICES_DIR: testServicesDir(), ROLE: 'all' });
    await app.app.listen(0, '127.0.0.1');
    http = app.app.getHttpServer();
    alice = bearer(
      await mintAccessToken(app, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 }),
    );
  });
  afterAll(() => app.close());

  const storedJobs = () => {
    const dir = join(app.config.storageDir, 'jobs');
    return existsSync(dir) ? readdirSync(dir) : [];
  };
  const jobCount = async () =>
    (await request(http).get('/api/v1/jobs').query({ limit: 200 }).set(alice).expect(200)).body
      .items.length as number;

  const payload = (entries: Parameters<typeof rawTar>[0]) => gzipSync(rawTar(entries));

  it('runs a job from a payload tar.gz holding main.json and the files', async () => {
    const archive = payload([
      {
        path: 'main.json',
        body: JSON.stringify({ message: 'from a payload', file: 'data/notes.txt' }),
      },
      { path: 'data/notes.txt', body: 'packed bytes' },
    ]);
    const res = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .field('service', 'echo')
      .attach('payload', archive, 'payload.tar.gz')
      .expect(201);
    const events = await followEvents(`${baseUrl(http)}/api/v1/jobs/${res.body.id}/events`, alice);
    expect(events[events.length - 1].data.state).toBe('succeeded');
    const result = await request(http)
      .get(`/api/v1/jobs/${res.body.id}/result`)
      .set(alice)
      .buffer(true)
      .parse((r, done) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => done(null, Buffer.concat(chunks)));
      })
      .expect(200);
    const files = untar(result.body as Buffer);
    expect(files['message.txt'].toString()).toBe('from a payload');
    expect(files['notes.txt'].toString()).toBe('packed bytes');
  });

  it.each([
    ['a ../ path (tar slip)', [{ path: '../x', body: 'evil' }], 400],
    ['an absolute path', [{ path: '/etc/x', body: 'evil' }], 400],
    ['a symlink to /', [{ path: 'data/root', type: '2', linkpath: '/' }], 400],
    ['a hard link', [{ path: 'data/h', type: '1', linkpath: 'main.json' }], 400],
    ['a character device', [{ path: 'data/tty', type: '3' }], 400],
  ])('refuses a payload with %s and keeps nothing', async (_what, entries, status) => {
    const before = { jobs: await jobCount(), stored: storedJobs().length };
    const res = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .field('service', 'echo')
      .attach(
        'payload',
        payload([{ path: 'main.json', body: '{"message":"x"}' }, ...entries]),
        'p.tar.gz',
      );
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.errors[0].field).toBe('payload');
    expect(await jobCount()).toBe(before.jobs);
    expect(storedJobs().length).toBe(before.stored);
    expect(existsSync(join(app.varDir, 'tmp')) ? readdirSync(join(app.varDir, 'tmp')) : []).toEqual(
      [],
    );
  });

  it('refuses a payload that is not gzip', async () => {
    const res = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .field('service', 'echo')
      .attach('payload', Buffer.from('plain text'), 'p.tar.gz');
    expect(res.status).toBe(400);
  });

  it('answers a form that names an unknown service with a 404 problem, files or none', async () => {
    // The service check may settle after the form has ended: the answer must still come.
    const before = storedJobs();
    const bare = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .field('service', 'no-such-service')
      .expect(404);
    expect(bare.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(bare.body.detail).toMatch(/no-such-service/);
    const withFile = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .field('service', '../../etc')
      .attach('file', Buffer.from('bytes'), 'f.txt')
      .expect(404);
    expect(withFile.body.detail).toMatch(/There is no service/);
    expect(storedJobs()).toEqual(before);
  });

  it('returns the first job for the same Idempotency-Key and request, 409 for another request', async () => {
    const body = { service: 'float-add', inputs: { a: 2, b: 3 } };
    const first = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .set('Idempotency-Key', 'k-1')
      .send(body)
      .expect(201);
    const again = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .set('Idempotency-Key', 'k-1')
      .send(body)
      .expect(201);
    expect(again.body.id).toBe(first.body.id);
    expect(again.body.token).toBeUndefined();
    const other = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .set('Idempotency-Key', 'k-1')
      .send({ service: 'float-add', inputs: { a: 2, b: 4 } });
    expect(other.status).toBe(409);
    expect(other.body.detail).toMatch(/different request/);
    // Another user may use the same key for their own request.
    const bob = bearer(await mintAccessToken(app, { sub: 'bob' }));
    const bobs = await request(http)
      .post('/api/v1/jobs')
      .set(bob)
      .set('Idempotency-Key', 'k-1')
      .send(body)
      .expect(201);
    expect(bobs.body.id).not.toBe(first.body.id);
  });

  it('creates one job when the same key arrives twice at once', async () => {
    const body = { service: 'float-add', inputs: { a: 5, b: 5 } };
    const send = () =>
      request(http).post('/api/v1/jobs').set(alice).set('Idempotency-Key', 'k-race').send(body);
    const [a, b] = await Promise.all([send(), send()]);
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(a.body.id).toBe(b.body.id);
  });

  it('refuses an Idempotency-Key that is not printable ASCII', async () => {
    const res = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .set('Idempotency-Key', 'x'.repeat(201))
      .send({ service: 'float-add', inputs: { a: 1, b: 1 } });
    expect(res.status).toBe(400);
  });

  it('documents Idempotency-Key once, optional, and no operation any header twice', async () => {
    type Parameter = { name: string; in: string; required?: boolean };
    const doc = (await request(http).get('/docs-json').expect(200)).body as {
      paths: Record<string, Record<string, { parameters?: Parameter[] }>>;
    };
    const submitHeaders = (doc.paths['/api/v1/jobs'].post.parameters ?? []).filter(
      (p) => p.in === 'header',
    );
    expect(submitHeaders).toEqual([
      expect.objectContaining({ name: 'Idempotency-Key', required: false }),
    ]);
    // HTTP header names are case-insensitive: two spellings are one header documented twice.
    const twice = Object.entries(doc.paths).flatMap(([path, operations]) =>
      Object.entries(operations).flatMap(([method, operation]) => {
        const names = (operation.parameters ?? [])
          .filter((p) => p.in === 'header')
          .map((p) => p.name.toLowerCase());
        return names
          .filter((name, i) => names.indexOf(name) !== i)
          .map((name) => `${method.toUpperCase()} ${path}: ${name}`);
      }),
    );
    expect(twice).toEqual([]);
  });
});
