import type { INestApplicationContext } from '@nestjs/common';
import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import request from 'supertest';
import { createApi } from '../../src/bootstrap';
import { JobScheduler } from '../../src/jobs/scheduling/job-scheduler';
import { RUN_TIME_BUCKETS } from '../../src/health/job-metrics';
import {
  createDevice,
  heartbeat,
  roleHeaders,
  ROLE_ENV,
  type RoleHeaders,
} from '../support/devices';
import { baseUrl, followEvents } from '../support/jobs';
import { addLiveLocalDevice } from '../support/recovery';
import { testServicesDir } from '../support/services.fixture';
import { TcpProxy } from '../support/tcp-proxy';
import { createTestEnvironment, startTestApp, startTestWorker, TestApp } from '../support/test-app';
import { parseMetrics, samples, valueOf, type Sample } from './metrics-text';

/** Text format 0.0.4 (Express reorders the parameters; Prometheus does not mind). */
function expectPrometheusText(res: request.Response) {
  expect(res.headers['content-type']).toMatch(/^text\/plain;/);
  expect(res.headers['content-type']).toContain('version=0.0.4');
}

async function scrape(http: Server, headers: Record<string, string> = {}): Promise<Sample[]> {
  const res = await request(http).get('/metrics').set(headers).expect(200);
  expectPrometheusText(res);
  return parseMetrics(res.text);
}

describe('GET /metrics', () => {
  let app: TestApp;
  let http: Server;
  let roles: RoleHeaders;
  let db: Client;
  let worker: INestApplicationContext | undefined;

  beforeAll(async () => {
    // API only: the jobs run in a separate worker, whose process nobody scrapes.
    app = await startTestApp({
      ...ROLE_ENV,
      ROLE: 'api',
      SERVICES_DIR: testServicesDir(),
      LOCAL_DEVICE: 'false',
    });
    await app.app.listen(0, '127.0.0.1');
    http = app.app.getHttpServer();
    roles = await roleHeaders(app);
    db = new Client({ connectionString: app.config.database.url });
    await db.connect();
  });
  afterAll(async () => {
    await worker?.close();
    await db?.end();
    await app?.close();
  });

  const submit = async (body: Record<string, unknown>) =>
    (await request(http).post('/api/v1/jobs').set(roles.user).send(body).expect(201)).body
      .id as string;
  const finished = async (id: string) => {
    const events = await followEvents(`${baseUrl(http)}/api/v1/jobs/${id}/events`, roles.user);
    return events.filter((e) => e.event === 'state').pop()?.data.state;
  };

  it('answers in the Prometheus text format outside /api/v1, documented in the OpenAPI document', async () => {
    const res = await request(http).get('/metrics').expect(200);
    expectPrometheusText(res);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(() => parseMetrics(res.text)).not.toThrow();
    await request(http).get('/api/v1/metrics').expect(404);

    const doc = (await request(http).get('/docs-json').expect(200)).body;
    const operation = doc.paths['/metrics'].get;
    expect(Object.keys(operation.responses['200'].content)).toEqual(['text/plain']);
    expect(operation.responses['401'].description).toMatch(/METRICS_TOKEN/);
    expect(operation.description).toMatch(/METRICS_TOKEN/);
  });

  it('includes the default Node.js process metrics', async () => {
    const all = await scrape(http);
    expect(valueOf(all, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(samples(all, 'nodejs_heap_size_used_bytes')).toHaveLength(1);
    expect(samples(all, 'nodejs_eventloop_lag_seconds')).toHaveLength(1);
  });

  it('labels HTTP latency by route template and status, never by the URL', async () => {
    const ids = [randomUUID(), randomUUID()];
    for (const id of ids) {
      await request(http).get(`/api/v1/jobs/${id}`).set(roles.user).expect(404);
    }
    await request(http).get('/no/such/path-one').expect(404);
    await request(http).get(`/no/such/${ids[0]}`).expect(404);

    const res = await request(http).get('/metrics').expect(200);
    for (const id of ids) {
      expect(res.text).not.toContain(id);
    }
    expect(res.text).not.toContain('/no/such');
    const all = parseMetrics(res.text);
    const name = 'labgate_http_request_duration_seconds_count';
    expect(
      valueOf(all, name, { method: 'GET', route: '/api/v1/jobs/:id', status_code: '404' }),
    ).toBe(2);
    expect(
      valueOf(all, name, { method: 'GET', route: 'unmatched', status_code: '404' }),
    ).toBeGreaterThanOrEqual(2);
    // Cumulative buckets, ending with +Inf = count.
    const buckets = samples(all, 'labgate_http_request_duration_seconds_bucket', {
      route: '/api/v1/jobs/:id',
      status_code: '404',
    });
    expect(buckets.map((b) => b.value)).toEqual(
      [...buckets.map((b) => b.value)].sort((a, b) => a - b),
    );
    expect(buckets.find((b) => b.labels.le === '+Inf')?.value).toBe(2);
  });

  it('counts jobs by service and state and the queues, from PostgreSQL and Bull, whichever process ran them', async () => {
    // No device yet: the jobs wait in PostgreSQL for placement.
    const jobs = [];
    for (let i = 0; i < 3; i++) {
      jobs.push(await submit({ service: 'float-add', inputs: { a: i, b: 1 } }));
    }
    let all = await scrape(http);
    expect(valueOf(all, 'labgate_jobs', { service: 'float-add', state: 'queued' })).toBe(3);
    expect(valueOf(all, 'labgate_jobs', { service: 'float-add', state: 'succeeded' })).toBe(0);
    expect(valueOf(all, 'labgate_jobs_awaiting_placement', { service: 'float-add' })).toBe(3);

    // A local device with one slot: one job goes to its Bull queue, where no worker takes it.
    await addLiveLocalDevice(app.config.database.url!, 1);
    await app.app.get(JobScheduler).settle();
    all = await scrape(http);
    expect(valueOf(all, 'labgate_jobs', { service: 'float-add', state: 'assigned' })).toBe(1);
    expect(valueOf(all, 'labgate_jobs_awaiting_placement', { service: 'float-add' })).toBe(2);
    expect(valueOf(all, 'labgate_device_queue_jobs', { device: 'local', state: 'waiting' })).toBe(
      1,
    );
    expect(valueOf(all, 'labgate_device_queue_jobs', { device: 'local', state: 'active' })).toBe(0);
    expect(valueOf(all, 'labgate_device_active_jobs', { device: 'local' })).toBe(1);
    expect(valueOf(all, 'labgate_device_slots', { device: 'local' })).toBe(1);

    // A worker (another Nest context with its own registry) runs them all.
    worker = await startTestWorker(app.config);
    for (const id of jobs) {
      expect(await finished(id)).toBe('succeeded');
    }
    all = await scrape(http);
    expect(valueOf(all, 'labgate_jobs', { service: 'float-add', state: 'succeeded' })).toBe(3);
    expect(valueOf(all, 'labgate_jobs', { service: 'float-add', state: 'queued' })).toBe(0);
    expect(valueOf(all, 'labgate_jobs_awaiting_placement', { service: 'float-add' })).toBe(0);
    expect(valueOf(all, 'labgate_device_queue_jobs', { device: 'local', state: 'waiting' })).toBe(
      0,
    );
    const runs = { service: 'float-add' };
    expect(valueOf(all, 'labgate_job_run_duration_seconds_count', runs)).toBe(3);
    expect(valueOf(all, 'labgate_job_run_duration_seconds_bucket', { ...runs, le: '+Inf' })).toBe(
      3,
    );
    expect(valueOf(all, 'labgate_job_run_duration_seconds_sum', runs)).toBeGreaterThan(0);

    // One run made to last 42 s: it leaves the 30 s bucket but is in the 60 s one.
    await db.query(
      `update job_event r set at = f.at - interval '42 seconds'
         from job_event f
        where r.job_id = $1 and r.state = 'running' and f.job_id = r.job_id
          and f.state = 'succeeded'`,
      [jobs[0]],
    );
    all = await scrape(http);
    const bucket = (le: number) =>
      valueOf(all, 'labgate_job_run_duration_seconds_bucket', { ...runs, le: String(le) });
    expect(RUN_TIME_BUCKETS).toEqual(expect.arrayContaining([30, 60]));
    expect(bucket(30)).toBe(2);
    expect(bucket(60)).toBe(3);
    expect(valueOf(all, 'labgate_job_run_duration_seconds_sum', runs)).toBeGreaterThanOrEqual(42);
  });

  it('keeps counting the runs of a retried job: the run-time counts never go down', async () => {
    const id = await submit({ service: 'fail', inputs: {} });
    expect(await finished(id)).toBe('failed');
    const before = await scrape(http);
    expect(valueOf(before, 'labgate_job_run_duration_seconds_count', { service: 'fail' })).toBe(1);
    expect(valueOf(before, 'labgate_jobs', { service: 'fail', state: 'failed' })).toBe(1);

    await request(http).post(`/api/v1/jobs/${id}/retry`).set(roles.user).expect(200);
    const retried = await scrape(http);
    expect(
      valueOf(retried, 'labgate_job_run_duration_seconds_count', { service: 'fail' }),
    ).toBeGreaterThanOrEqual(1);
    expect(await finished(id)).toBe('failed');
    const after = await scrape(http);
    expect(valueOf(after, 'labgate_job_run_duration_seconds_count', { service: 'fail' })).toBe(2);
  });

  it('shows each device state and admin state', async () => {
    const idle = await createDevice(http, roles.admin, { name: 'metrics-idle' });
    await heartbeat(http, idle.token);
    const down = await createDevice(http, roles.admin, { name: 'metrics-down' });
    await request(http)
      .patch(`/api/v1/devices/${down.id}`)
      .set(roles.admin)
      .send({ adminState: 'maintenance' })
      .expect(200);

    const all = await scrape(http);
    const state = (device: string, s: string) =>
      valueOf(all, 'labgate_device_state', { device, state: s });
    expect([state('metrics-idle', 'IDLE'), state('metrics-idle', 'BUSY')]).toEqual([1, 0]);
    expect(state('metrics-idle', 'DOWN')).toBe(0);
    expect(state('metrics-down', 'DOWN')).toBe(1);
    expect(
      valueOf(all, 'labgate_device_admin_state', { device: 'metrics-down', state: 'maintenance' }),
    ).toBe(1);
    expect(
      valueOf(all, 'labgate_device_admin_state', { device: 'metrics-down', state: 'enabled' }),
    ).toBe(0);
    expect(valueOf(all, 'labgate_devices', { state: 'DOWN', admin_state: 'maintenance' })).toBe(1);
    // Every device in exactly one (state, admin state) pair: `local` (earlier test) and these two.
    const total = samples(all, 'labgate_devices').reduce((sum, s) => sum + s.value, 0);
    expect(total).toBe(3);
    expect(samples(all, 'labgate_device_slots')).toHaveLength(3);
    // Agents pull their work from PostgreSQL: no Bull queue to report.
    expect(samples(all, 'labgate_device_queue_jobs', { device: 'metrics-idle' })).toEqual([]);
    expect(valueOf(all, 'labgate_metrics_collector_up', { collector: 'devices' })).toBe(1);
    expect(valueOf(all, 'labgate_metrics_collector_up', { collector: 'jobs' })).toBe(1);
  });

  it('keeps a registry per app: another app in this process counts only its own requests', async () => {
    const other = await startTestApp();
    try {
      await request(http).get('/api/v1/services').set(roles.user).expect(200);
      const mine = await scrape(http);
      const theirs = await scrape(other.app.getHttpServer());
      const route = { route: '/api/v1/services' };
      expect(samples(mine, 'labgate_http_request_duration_seconds_count', route)).not.toEqual([]);
      expect(samples(theirs, 'labgate_http_request_duration_seconds_count', route)).toEqual([]);
      // The process metrics are the same process's, in both.
      expect(samples(theirs, 'process_cpu_user_seconds_total')).toHaveLength(1);
    } finally {
      await other.close();
    }
  });
});

describe('GET /metrics with METRICS_TOKEN', () => {
  let app: TestApp;
  let http: Server;

  beforeAll(async () => {
    app = await startTestApp({ METRICS_TOKEN: 'scrape-me-9f3a' });
    http = app.app.getHttpServer();
  });
  afterAll(() => app?.close());

  it('refuses a scrape without the token with a 401 problem', async () => {
    const res = await request(http).get('/metrics').expect(401);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(res.body.detail).toMatch(/METRICS_TOKEN/);
  });

  it('refuses a wrong token, also one of the same length', async () => {
    for (const token of ['scrape-me-9f3b', 'nope', 'scrape-me-9f3a-and-more']) {
      await request(http).get('/metrics').set('Authorization', `Bearer ${token}`).expect(401);
    }
  });

  it('refuses a valid user token: only the metrics token opens it', async () => {
    const roles = await roleHeaders(app);
    await request(http).get('/metrics').set(roles.admin).expect(401);
  });

  it('answers with the token', async () => {
    const all = await scrape(http, { Authorization: 'Bearer scrape-me-9f3a' });
    expect(samples(all, 'process_cpu_user_seconds_total')).toHaveLength(1);
  });
});

describe('GET /metrics when PostgreSQL is gone', () => {
  it('still answers, without the metrics it could not read, and says which', async () => {
    const proxy = await new TcpProxy(5432).start();
    const env = await createTestEnvironment();
    const url = new URL(env.database.url);
    url.port = String(proxy.port);
    const api = await createApi(
      env.config.with({ database: { ...env.config.database, url: url.toString() } }),
    );
    await api.init();
    try {
      const http = api.getHttpServer();
      const up = await scrape(http);
      expect(valueOf(up, 'labgate_metrics_collector_up', { collector: 'jobs' })).toBe(1);
      await proxy.cut();
      const down = await scrape(http);
      expect(valueOf(down, 'labgate_metrics_collector_up', { collector: 'jobs' })).toBe(0);
      expect(valueOf(down, 'labgate_metrics_collector_up', { collector: 'devices' })).toBe(0);
      expect(samples(down, 'labgate_jobs')).toEqual([]);
      expect(samples(down, 'process_cpu_user_seconds_total')).toHaveLength(1);
    } finally {
      await api.close();
      await proxy.cut();
      await env.dispose();
    }
  });
});
