import type { Server } from 'node:http';
import request from 'supertest';
import { bearer, mintAccessToken } from '../support/auth';
import { baseUrl } from '../support/jobs';
import { testServicesDir } from '../support/services.fixture';
import { startTestApp, TestApp } from '../support/test-app';

describe('GET /api/v1/jobs/:id/log?follow=1 on a job with no output yet', () => {
  let app: TestApp;
  let http: Server;
  let alice: Record<string, string>;

  beforeAll(async () => {
    // API only, and no device: a submitted job stays queued, with no log, as long as we like.
    app = await startTestApp({ SERVICES_DIR: testServicesDir(), ROLE: 'api' });
    await app.app.listen(0, '127.0.0.1');
    http = app.app.getHttpServer();
    alice = bearer(
      await mintAccessToken(app, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 }),
    );
  });
  afterAll(() => app.close());

  it('answers 200 with its content type at once, then ends the stream when the job ends', async () => {
    const { body } = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .send({ service: 'float-add', inputs: { a: 1, b: 2 } })
      .expect(201);
    const id = body.id as string;

    // fetch resolves once the status line and headers have arrived.
    const silent = new AbortController();
    const timer = setTimeout(() => silent.abort(), 5_000);
    const res = await fetch(`${baseUrl(http)}/api/v1/jobs/${id}/log?follow=1`, {
      headers: alice,
      signal: silent.signal,
    }).finally(() => clearTimeout(timer));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');

    await request(http).post(`/api/v1/jobs/${id}/cancel`).set(alice).expect(200);
    expect(await res.text()).toBe(''); // the job ended without output: so does the stream
  });
});
