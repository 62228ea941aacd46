import type { Server } from 'node:http';
import request from 'supertest';
import { roleHeaders, ROLE_ENV } from '../support/devices';
import { RESTRICTED, resultsServicesDir, userId } from '../support/results';
import { startTestApp, TestApp } from '../support/test-app';

describe('POST /api/v1/results: direct submissions, validated against the result schema', () => {
  let app: TestApp;
  let http: Server;
  let roles: Awaited<ReturnType<typeof roleHeaders>>;

  beforeAll(async () => {
    app = await startTestApp({ ...ROLE_ENV, SERVICES_DIR: resultsServicesDir(), ROLE: 'api' });
    http = app.app.getHttpServer();
    roles = await roleHeaders(app);
  });
  afterAll(() => app?.close());

  const past = '2026-01-15T10:00:00Z';
  const post = (body: Record<string, unknown>, who = roles.user) =>
    request(http).post('/api/v1/results').set(who).send(body);

  it('stores a valid result for its submitter, executedAt as the UTC instant it names', async () => {
    const res = await post({
      service: 'float-add',
      metrics: { sum: 3.5 },
      executedAt: '2026-01-15T12:30:00.250+02:00',
      tags: ['cluster-x', 'run:7'],
      visibility: 'institution',
    }).expect(201);
    expect(res.body).toMatchObject({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      service: 'float-add',
      serviceVersion: '1.0.0',
      ownerId: await userId(http, roles.user),
      metrics: { sum: 3.5 },
      artifacts: [],
      tags: ['cluster-x', 'run:7'],
      visibility: 'institution',
      status: 'published',
      executedAt: '2026-01-15T10:30:00.250Z',
    });
    expect(res.body.jobId).toBeUndefined();
    const read = await request(http).get(`/api/v1/results/${res.body.id}`).set(roles.other);
    expect(read.status).toBe(200);
    expect(read.body.metrics).toEqual({ sum: 3.5 });
    // Private is the default.
    const own = await post({ service: 'float-add', metrics: { sum: 1 }, executedAt: past });
    expect(own.body.visibility).toBe('private');
  });

  it.each<[string, Record<string, unknown>, Array<{ field: string; message: RegExp }>]>([
    [
      'a metric of the wrong type',
      { metrics: { sum: 'three' } },
      [{ field: 'metrics.sum', message: /must be number/ }],
    ],
    [
      'a missing required metric',
      { metrics: {} },
      [{ field: 'metrics.sum', message: /is required/ }],
    ],
    [
      'a metric the schema does not allow',
      { metrics: { sum: 1, extra: 2 } },
      [{ field: 'metrics.extra', message: /not allowed by the result schema/ }],
    ],
    [
      'metrics that are not an object',
      { metrics: [1, 2] },
      [{ field: 'metrics', message: /JSON object/ }],
    ],
    [
      'executedAt without a timezone',
      { executedAt: '2026-01-15T10:00:00' },
      [{ field: 'executedAt', message: /with a timezone/ }],
    ],
    [
      'executedAt in the future',
      { executedAt: new Date(Date.now() + 3600_000).toISOString() },
      [{ field: 'executedAt', message: /must not be in the future/ }],
    ],
    [
      'executedAt that is no date',
      { executedAt: 'yesterday' },
      [{ field: 'executedAt', message: /ISO 8601/ }],
    ],
    [
      'an impossible date',
      { executedAt: '2026-02-30T25:00:00Z' },
      [{ field: 'executedAt', message: /valid|ISO/ }],
    ],
    [
      'an unknown service',
      { service: 'no-such-service' },
      [{ field: 'service', message: /no service/ }],
    ],
    [
      'a bad tag',
      { tags: ['ok', 'not ok'] },
      [{ field: 'tags', message: /tags of 1-64 characters/ }],
    ],
    [
      'a bad visibility',
      { visibility: 'world' },
      [{ field: 'visibility', message: /one of private/ }],
    ],
    [
      'a field that is not one',
      { colour: 'red' },
      [{ field: 'colour', message: /should not exist/ }],
    ],
  ])('answers %s with a 400 problem naming the field', async (_what, change, errors) => {
    const res = await post({
      service: 'float-add',
      metrics: { sum: 1 },
      executedAt: past,
      ...change,
    }).expect(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 400, type: 'urn:labgate:problem:validation' });
    expect(res.body.errors).toEqual(
      errors.map((e) => ({ field: e.field, message: expect.stringMatching(e.message) })),
    );
  });

  it('reports every schema violation at once', async () => {
    const res = await request(http)
      .post('/api/v1/results')
      .set(roles.user)
      .send({ service: 'float-add', metrics: { sum: 'x', more: true }, executedAt: past })
      .expect(400);
    expect(res.body.errors.map((e: { field: string }) => e.field).sort()).toEqual([
      'metrics.more',
      'metrics.sum',
    ]);
  });

  it('treats a service the caller is not entitled to as unknown, and needs a signed-in caller', async () => {
    const hidden = await post({ service: RESTRICTED, metrics: {}, executedAt: past }).expect(400);
    expect(hidden.body.errors).toEqual([
      { field: 'service', message: expect.stringMatching(/no service/) },
    ]);
    await post({ service: RESTRICTED, metrics: {}, executedAt: past }, roles.admin).expect(201);
    await post({ service: 'float-add', metrics: { sum: 1 }, executedAt: past }, {}).expect(401);
  });
});
