import { ROLE_ENV } from '../support/devices';
import { baseOf, type Answer, type Headers } from '../support/evidence/http';
import { buildWorld, CALLERS, type Caller, type World } from '../support/evidence/matrix-world';
import { multipart } from '../support/evidence/multipart';
import { fetchOpenApi, fillPath, operationsOf, type Operation } from '../support/evidence/openapi';
import { resultsServicesDir } from '../support/results';
import { startTestApp, type TestApp } from '../support/test-app';

/** Expected status per caller, in the order of CALLERS. */
type Statuses = [
  anonymous: number,
  user: number,
  other: number,
  operator: number,
  admin: number,
  device: number,
  ticket: number,
];

interface Request {
  /** Values of the path's `{placeholders}`. */
  params?: Record<string, string>;
  query?: string;
  body?: unknown;
  headers?: Headers;
  /** The ticket the `ticket` caller sends (default: the succeeded job's). */
  ticket?: string;
}

interface Row {
  expect: Statuses;
  /** Built once per caller, so that a request that changes its object gets a fresh one. */
  request?: (w: World) => Request | Promise<Request>;
}

// What each kind of caller gets, from the design (ARCHITECTURE.md "Auth", the README's tables)
// and the route decorators: @Public (anyone, credentials ignored), @Roles (403 for signed-in
// users without the role), @OptionalAuth job routes (owner, admin or ticket holder; anyone else
// 404, so that a job's existence does not leak), @DeviceAuth agent routes (device tokens only;
// every other credential 401), everything else signed-in users only (401). A device token is
// refused (401) on every user route; a ticket opens its own job and nothing else.
//
// Columns:                      anon user other oper admin device ticket
const SIGNED_IN: Statuses = /**/ [401, 200, 200, 200, 200, 401, 401];
const CREATED: Statuses = /*  */ [401, 201, 201, 201, 201, 401, 401];
const ADMIN: Statuses = /*    */ [401, 403, 403, 403, 200, 401, 401];
const OPERATOR: Statuses = /* */ [401, 403, 403, 200, 200, 401, 401];
const DEVICE: Statuses = /*   */ [401, 401, 401, 401, 401, 200, 401];
const PUBLIC: Statuses = /*   */ [200, 200, 200, 200, 200, 200, 200];
/** `user`'s own object: `other` and the operator meet a 404, as if it did not exist. */
const OWN: Statuses = /*      */ [401, 200, 404, 404, 200, 401, 401];
/** `user`'s own job, on an @OptionalAuth job route: its ticket opens it too. */
const JOB: Statuses = /*      */ [404, 200, 404, 404, 200, 401, 200];
/** `user`'s own object that only its owner manages (tokens, webhooks): admins too get 404. */
const MINE: Statuses = /*     */ [401, 200, 404, 404, 404, 401, 401];

const METRICS_TOKEN = 'matrix-metrics-token';

const noContent = (s: Statuses) => s.map((v) => (v === 200 ? 204 : v)) as Statuses;
const created = (s: Statuses) => s.map((v) => (v === 200 ? 201 : v)) as Statuses;
const later = () => new Date(Date.now() + 86_400_000).toISOString();

/**
 * Every operation of the OpenAPI document. An operation without an entry fails the test, as
 * does an entry for an operation that is gone: add the row with the route.
 */
const MATRIX: Record<string, Row> = {
  // auth: login and callback are public (a callback without a login flow is a 400 for anyone)
  'GET /api/v1/auth/login': { expect: [302, 302, 302, 302, 302, 302, 302] },
  'GET /api/v1/auth/callback': { expect: [400, 400, 400, 400, 400, 400, 400] },
  // Signed in: 303 to the provider's end-session endpoint, which offers RP-initiated logout.
  'POST /api/v1/auth/logout': { expect: [401, 303, 303, 303, 303, 401, 401] },

  // me, tokens
  'GET /api/v1/me': { expect: SIGNED_IN },
  'GET /api/v1/me/tokens': { expect: SIGNED_IN },
  'POST /api/v1/me/tokens': {
    expect: CREATED,
    request: () => ({ body: { name: 'matrix', scopes: ['read'], expiresAt: later() } }),
  },
  'DELETE /api/v1/me/tokens/{id}': {
    expect: noContent(MINE),
    request: async (w) => ({ params: { id: await w.freshToken() } }),
  },

  // notifications, preferences, webhooks
  'GET /api/v1/me/notifications': { expect: SIGNED_IN },
  'POST /api/v1/me/notifications/read': { expect: SIGNED_IN, request: () => ({ body: {} }) },
  'GET /api/v1/me/notification-preferences': { expect: SIGNED_IN },
  'PUT /api/v1/me/notification-preferences': {
    expect: SIGNED_IN,
    request: () => ({
      body: { preferences: [{ event: 'job.succeeded', channel: 'inapp', enabled: true }] },
    }),
  },
  'GET /api/v1/me/webhooks': { expect: SIGNED_IN },
  'POST /api/v1/me/webhooks': {
    expect: CREATED,
    request: () => ({ body: { url: 'http://127.0.0.1:9/hook', events: ['*'] } }),
  },
  'DELETE /api/v1/me/webhooks/{id}': {
    expect: noContent(MINE),
    request: async (w) => ({ params: { id: await w.freshWebhook() } }),
  },
  'GET /api/v1/me/webhooks/{id}/deliveries': {
    expect: MINE,
    request: (w) => ({ params: { id: w.webhook } }),
  },

  // services: any signed-in user reads (entitlements permitting), admins change
  'GET /api/v1/services': { expect: SIGNED_IN },
  'GET /api/v1/services/{key}': {
    expect: SIGNED_IN,
    request: () => ({ params: { key: 'float-add' } }),
  },
  'PATCH /api/v1/services/{key}': {
    expect: ADMIN,
    request: () => ({ params: { key: 'float-add' }, body: { enabled: true } }),
  },

  // jobs
  'POST /api/v1/jobs': {
    expect: CREATED,
    request: () => ({ body: { service: 'float-add', inputs: { a: 1, b: 2 } } }),
  },
  'GET /api/v1/jobs': { expect: SIGNED_IN },
  'GET /api/v1/jobs/{id}': { expect: JOB, request: (w) => ({ params: { id: w.job.id } }) },
  'GET /api/v1/jobs/{id}/events': {
    expect: JOB,
    request: (w) => ({ params: { id: w.job.id } }),
  },
  'GET /api/v1/jobs/{id}/log': { expect: JOB, request: (w) => ({ params: { id: w.job.id } }) },
  'GET /api/v1/jobs/{id}/result': {
    expect: JOB,
    request: (w) => ({ params: { id: w.job.id } }),
  },
  // A succeeded job cannot be retried: 409 once the caller may see it.
  'POST /api/v1/jobs/{id}/retry': {
    expect: [404, 409, 404, 404, 409, 401, 409],
    request: (w) => ({ params: { id: w.job.id } }),
  },
  'POST /api/v1/jobs/{id}/cancel': {
    expect: JOB,
    request: async (w) => {
      const job = await w.freshParked();
      return { params: { id: job.id }, ticket: job.token };
    },
  },
  'DELETE /api/v1/jobs/{id}': {
    expect: noContent(JOB),
    request: async (w) => {
      const job = await w.freshCancelled();
      return { params: { id: job.id }, ticket: job.token };
    },
  },
  'PATCH /api/v1/jobs/{id}': {
    expect: ADMIN,
    request: (w) => ({ params: { id: w.parked.id }, body: { priority: 1 } }),
  },
  // A batch is its owner's (and admins'); a ticket opens one job, not its batch.
  'POST /api/v1/jobs/batches/{batchId}/cancel': {
    expect: OWN,
    request: async (w) => {
      const job = await w.freshParked();
      return { params: { batchId: job.batchId }, ticket: job.token };
    },
  },

  // agent protocol: device tokens only
  'POST /api/v1/agent/heartbeat': { expect: DEVICE, request: () => ({ body: {} }) },
  'POST /api/v1/agent/commands/{id}/ack': {
    expect: DEVICE,
    request: (w) => ({ params: { id: w.device.command }, body: { ok: true } }),
  },
  'POST /api/v1/agent/jobs/claim': {
    expect: noContent(DEVICE),
    request: () => ({ query: 'wait=0' }),
  },
  'GET /api/v1/agent/jobs/{id}/inputs': {
    expect: DEVICE,
    request: (w) => ({ params: { id: w.running.inputs } }),
  },
  'POST /api/v1/agent/jobs/{id}/progress': {
    expect: DEVICE,
    request: (w) => ({ params: { id: w.running.inputs }, body: { percent: 50 } }),
  },
  'POST /api/v1/agent/jobs/{id}/complete': {
    expect: DEVICE,
    request: (w) => {
      const form = multipart([{ name: 'metrics', body: JSON.stringify({ score: 0.5 }) }]);
      return {
        params: { id: w.running.complete },
        body: form.body,
        headers: { 'Content-Type': form.contentType },
      };
    },
  },
  'POST /api/v1/agent/jobs/{id}/fail': {
    expect: DEVICE,
    request: (w) => ({ params: { id: w.running.fail }, body: { reason: 'matrix' } }),
  },

  // devices: operators read and command, admins manage
  'GET /api/v1/devices': { expect: OPERATOR },
  'POST /api/v1/devices': {
    expect: created(ADMIN),
    request: () => ({
      body: {
        name: `matrix-${Math.random().toString(36).slice(2)}`,
        kind: 'gpu',
        runner: 'agent',
        services: ['*'],
        slots: 1,
      },
    }),
  },
  'GET /api/v1/devices/{id}': { expect: OPERATOR, request: (w) => ({ params: { id: w.spare } }) },
  'PATCH /api/v1/devices/{id}': {
    expect: ADMIN,
    request: (w) => ({ params: { id: w.spare }, body: { labels: { room: 'matrix' } } }),
  },
  'DELETE /api/v1/devices/{id}': {
    expect: noContent(ADMIN),
    request: async (w) => ({ params: { id: await w.freshDevice() } }),
  },
  'POST /api/v1/devices/{id}/rotate-token': {
    expect: ADMIN,
    request: (w) => ({ params: { id: w.spare } }),
  },
  'GET /api/v1/devices/{id}/commands': {
    expect: OPERATOR,
    request: (w) => ({ params: { id: w.spare } }),
  },
  'POST /api/v1/devices/{id}/commands': {
    expect: created(OPERATOR),
    request: (w) => ({ params: { id: w.spare }, body: { type: 'start', args: {} } }),
  },

  // results: public ones to anyone; a private one to its owner and admins only
  'GET /api/v1/results': { expect: [200, 200, 200, 200, 200, 401, 200] },
  'POST /api/v1/results': {
    expect: CREATED,
    request: () => ({
      body: {
        service: 'benchmark',
        metrics: { score: 2 },
        executedAt: new Date(Date.now() - 60_000).toISOString(),
      },
    }),
  },
  'GET /api/v1/results/{id}': {
    expect: [404, 200, 404, 404, 200, 401, 404],
    request: (w) => ({ params: { id: w.result.id } }),
  },
  'GET /api/v1/results/{id}/artifacts/{name}': {
    expect: [404, 200, 404, 404, 200, 401, 404],
    request: (w) => ({ params: { id: w.result.id, name: w.result.artifact } }),
  },
  'PATCH /api/v1/results/{id}': {
    expect: OWN,
    request: (w) => ({ params: { id: w.result.id }, body: { visibility: 'private' } }),
  },
  'PUT /api/v1/results/{id}/tags': {
    expect: OWN,
    request: (w) => ({ params: { id: w.result.id }, body: { tags: ['matrix'] } }),
  },
  // A claim hides the result: a fresh private one each time (others cannot see it: 404).
  'POST /api/v1/results/{id}/claim': {
    expect: created(OWN),
    request: async (w) => ({
      params: { id: await w.freshResult('private') },
      body: { reason: 'a duplicate run' },
    }),
  },

  // admin
  'GET /api/v1/admin/entitlement-rules': { expect: ADMIN },
  'POST /api/v1/admin/entitlement-rules': {
    expect: created(ADMIN),
    request: () => ({
      body: {
        entitlement: `urn:labgate:matrix:${Math.random().toString(36).slice(2)}`,
        match: 'exact',
        role: 'operator',
      },
    }),
  },
  'DELETE /api/v1/admin/entitlement-rules/{id}': {
    expect: noContent(ADMIN),
    request: async (w) => ({ params: { id: await w.freshRule() } }),
  },
  'GET /api/v1/admin/claims': { expect: ADMIN },
  'POST /api/v1/admin/claims/{id}/approve': {
    expect: ADMIN,
    request: async (w) => ({ params: { id: await w.freshClaim() }, body: {} }),
  },
  'POST /api/v1/admin/claims/{id}/reject': {
    expect: ADMIN,
    request: async (w) => ({ params: { id: await w.freshClaim() }, body: {} }),
  },

  'GET /api/v1/admin/users': { expect: ADMIN },
  'GET /api/v1/admin/users/{id}': { expect: ADMIN, request: (w) => ({ params: { id: w.userId } }) },
  // Unblocking a user who is not blocked: allowed for admins, changes nothing.
  'PATCH /api/v1/admin/users/{id}': {
    expect: ADMIN,
    request: (w) => ({ params: { id: w.userId }, body: { blocked: false } }),
  },
  'GET /api/v1/admin/audit': { expect: ADMIN },
  'GET /api/v1/admin/audit/actions': { expect: ADMIN },

  // health: public; metrics: only with METRICS_TOKEN (set here), never with user credentials
  'GET /health/live': { expect: PUBLIC },
  'GET /health/ready': { expect: PUBLIC },
  'GET /metrics': { expect: [401, 401, 401, 401, 401, 401, 401] },
};

/** Routes outside the OpenAPI document that exist all the same. */
const EXTRA: Record<string, Row> = {
  'GET /docs-json': { expect: PUBLIC },
  'GET /docs': { expect: PUBLIC },
  // Bull Board (plain Express behind its own access middleware): admins only, read-only.
  'GET /api/v1/admin/queues': { expect: ADMIN },
  'GET /api/v1/admin/queues/api/queues': { expect: ADMIN },
  'PUT /api/v1/admin/queues/api/queues/pause': { expect: [405, 405, 405, 405, 405, 405, 405] },
  // Unknown routes are a 404 problem for anyone (no hint about what would exist).
  'GET /api/v1/no-such-route': { expect: [404, 404, 404, 404, 404, 404, 404] },
};

function headersOf(w: World, caller: Caller, ticket: string): Headers {
  return caller === 'ticket' ? { 'X-Job-Token': ticket } : w.headers[caller];
}

const isProblem = (res: Answer) =>
  /^application\/problem\+json/.test(res.contentType) &&
  typeof (res.json as { status?: unknown })?.status === 'number';

describe('authorization matrix: every route × anonymous, user, other user, operator, admin, device, ticket', () => {
  let app: TestApp;
  let world: World;
  let operations: Operation[];

  beforeAll(async () => {
    app = await startTestApp({
      ...ROLE_ENV,
      ROLE: 'all',
      SERVICES_DIR: resultsServicesDir(),
      WEBHOOK_ALLOW_PRIVATE: 'true',
      // The agent device heartbeats once; its jobs must not go back to the queue meanwhile.
      DEVICE_DOWN_AFTER_SECONDS: '3600',
      RATE_LIMIT_USER_PER_MINUTE: '0',
      RATE_LIMIT_IP_PER_MINUTE: '0',
      METRICS_TOKEN: METRICS_TOKEN,
    });
    await app.app.listen(0, '127.0.0.1');
    const base = baseOf(app.app.getHttpServer());
    operations = operationsOf(await fetchOpenApi(base));
    world = await buildWorld(app, base);
  }, 90_000);
  afterAll(() => app?.close());

  it('has a row for every operation of the OpenAPI document, and none for a route that is gone', () => {
    const documented = operations.map((o) => o.key);
    expect({
      withoutRow: documented.filter((key) => !(key in MATRIX)),
      gone: Object.keys(MATRIX).filter((key) => !documented.includes(key)),
    }).toEqual({ withoutRow: [], gone: [] });
  });

  async function statuses(key: string, row: Row) {
    const [method, template] = key.split(' ');
    const got: Record<string, number> = {};
    const want: Record<string, number> = {};
    const notProblems: string[] = [];
    for (const [i, caller] of CALLERS.entries()) {
      const req = (await row.request?.(world)) ?? {};
      const path = fillPath(template, req.params ?? {}) + (req.query ? `?${req.query}` : '');
      const res = await world.send({
        method,
        path,
        headers: { ...headersOf(world, caller, req.ticket ?? world.job.token), ...req.headers },
        body: req.body,
      });
      got[caller] = res.status;
      want[caller] = row.expect[i];
      if (res.status >= 400 && !isProblem(res)) {
        notProblems.push(`${caller}: ${res.status} ${res.contentType} ${res.text.slice(0, 200)}`);
      }
    }
    expect({ statuses: got, notProblems }).toEqual({ statuses: want, notProblems: [] });
  }

  describe('OpenAPI operations', () => {
    it.each(Object.keys(MATRIX))('%s', (key) => statuses(key, MATRIX[key]));
  });

  describe('routes outside the OpenAPI document', () => {
    it.each(Object.keys(EXTRA))('%s', (key) => statuses(key, EXTRA[key]));
  });

  it('opens /metrics with the metrics token only', async () => {
    const metrics = (headers: Headers) => world.send({ method: 'GET', path: '/metrics', headers });
    expect((await metrics({ Authorization: `Bearer ${METRICS_TOKEN}` })).status).toBe(200);
    expect((await metrics({ Authorization: `Bearer ${METRICS_TOKEN}x` })).status).toBe(401);
  });

  it("opens a job with its own ticket only (header or ?token=), never with another job's", async () => {
    const get = (path: string, headers: Headers = {}) =>
      world.send({ method: 'GET', path, headers });
    const job = `/api/v1/jobs/${world.job.id}`;
    expect((await get(job, { 'X-Job-Token': world.parked.token })).status).toBe(404);
    expect((await get(`${job}?token=${world.parked.token}`)).status).toBe(404);
    expect((await get(`${job}?token=${world.job.token}`)).status).toBe(200);
    expect((await get(`${job}/result`, { 'X-Job-Token': world.parked.token })).status).toBe(404);
  });
});
