import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mintAccessToken } from '../auth';
import { roleHeaders } from '../devices';
import { BENCHMARK } from '../results';
import type { TestApp } from '../test-app';
import { bearer, call, type Call, type Headers } from './http';
import type { FuzzTargets } from './requests';

export interface FuzzWorld extends FuzzTargets {
  base: string;
  headers: Awaited<ReturnType<typeof roleHeaders>> & { device: Headers };
  ids: Record<string, string>;
  /** Claims a new job on the fuzz device: it is running there until completed or failed. */
  runningJob(): Promise<string>;
}

async function expect2xx(base: string, req: Call): Promise<Record<string, unknown>> {
  const res = await call(base, req);
  if (res.status < 200 || res.status >= 300) {
    throw new Error(`${req.method} ${req.path}: ${res.status} ${res.text}`);
  }
  return (res.json ?? {}) as Record<string, unknown>;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * Credentials (every kind, valid and invalid) and real objects for the fuzzer, so that
 * generated requests reach past authentication and "not found" into the code behind.
 */
export async function buildFuzzWorld(app: TestApp, base: string): Promise<FuzzWorld> {
  const roles = await roleHeaders(app);
  const post = (path: string, headers: Headers, body?: unknown) =>
    expect2xx(base, { method: 'POST', path, headers, body });

  const device = await post('/api/v1/devices', roles.admin, {
    name: `fuzz-${randomBytes(4).toString('hex')}`,
    kind: 'workstation',
    runner: 'agent',
    services: [BENCHMARK],
    slots: 50,
  });
  const deviceHeaders = bearer(device.token as string);
  await post('/api/v1/agent/heartbeat', deviceHeaders, {});
  const runningJob = async () => {
    const batch = await post('/api/v1/jobs', roles.user, {
      service: BENCHMARK,
      inputs: {},
      targets: [device.id],
    });
    const claimed = await post('/api/v1/agent/jobs/claim?wait=20', deviceHeaders);
    const id = (batch.jobs as Array<{ id: string }>)[0].id;
    if (claimed.id !== id) {
      throw new Error(`claimed ${String(claimed.id)} instead of ${id}`);
    }
    return id;
  };

  const job = await post('/api/v1/jobs', roles.user, {
    service: 'float-add',
    inputs: { a: 1, b: 2 },
  });
  // A batch on a device that is not the fuzz device's: nothing claims it away.
  const parking = await post('/api/v1/devices', roles.admin, {
    name: `fuzz-parking-${randomBytes(4).toString('hex')}`,
    kind: 'workstation',
    runner: 'agent',
    services: ['*'],
    slots: 1,
  });
  const batch = await post('/api/v1/jobs', roles.user, {
    service: 'float-add',
    inputs: { a: 1, b: 2 },
    targets: [parking.id],
  });
  const result = await post('/api/v1/results', roles.user, {
    service: BENCHMARK,
    metrics: { score: 1, name: 'fuzz' },
    executedAt: new Date(Date.now() - 60_000).toISOString(),
    visibility: 'public',
  });
  const claimed = await post('/api/v1/results', roles.user, {
    service: BENCHMARK,
    metrics: { score: 2 },
    executedAt: new Date(Date.now() - 60_000).toISOString(),
    visibility: 'institution',
  });
  const claim = await post(`/api/v1/results/${String(claimed.id)}/claim`, roles.other, {
    reason: 'fuzz',
  });
  const command = await post(`/api/v1/devices/${String(device.id)}/commands`, roles.operator, {
    type: 'custom',
  });
  const webhook = await post('/api/v1/me/webhooks', roles.user, {
    url: 'http://127.0.0.1:9/hook',
    events: ['*'],
  });
  const pat = await post('/api/v1/me/tokens', roles.user, {
    name: 'fuzz',
    scopes: ['read', 'write'],
    expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
  });
  const rule = await post('/api/v1/admin/entitlement-rules', roles.admin, {
    entitlement: 'urn:labgate:fuzz:nobody',
    match: 'exact',
    role: 'operator',
  });
  const running = await runningJob();

  const expired = await mintAccessToken(app, { sub: 'fuzz-expired', exp: 1_000_000_000 });
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const forged = await mintAccessToken(app, { sub: 'test-admin' }, { key: privateKey });
  const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({
    sub: 'test-admin',
    iss: app.idp.issuer,
    aud: app.config.oidc.audience,
    exp: Math.floor(Date.now() / 1000) + 600,
  })}.`;

  const ids: Record<string, string> = {
    job: job.id as string,
    ticket: job.token as string,
    batch: batch.batchId as string,
    result: result.id as string,
    device: device.id as string,
    command: command.id as string,
    webhook: webhook.id as string,
    token: pat.id as string,
    rule: rule.id as string,
    claim: claim.id as string,
    running,
  };
  const byPath: Array<[RegExp, string[]]> = [
    [/^\/api\/v1\/jobs\/batches/, [ids.batch]],
    [/^\/api\/v1\/jobs\//, [ids.job]],
    [/^\/api\/v1\/agent\/jobs\//, [ids.running, ids.job]],
    [/^\/api\/v1\/agent\/commands\//, [ids.command]],
    [/^\/api\/v1\/results\//, [ids.result]],
    [/^\/api\/v1\/devices\//, [ids.device]],
    [/^\/api\/v1\/me\/webhooks\//, [ids.webhook]],
    [/^\/api\/v1\/me\/tokens\//, [ids.token]],
    [/^\/api\/v1\/admin\/entitlement-rules\//, [ids.rule]],
    [/^\/api\/v1\/admin\/claims\//, [ids.claim]],
  ];

  const future = new Date(Date.now() + 86_400_000).toISOString();
  const past = new Date(Date.now() - 86_400_000).toISOString();
  const examples: Record<string, unknown[]> = {
    'POST /api/v1/me/tokens': [{ name: 'fuzz', scopes: ['read'], expiresAt: future }],
    'POST /api/v1/me/webhooks': [{ url: 'http://127.0.0.1:9/hook', events: ['job.succeeded'] }],
    'POST /api/v1/me/notifications/read': [{ ids: [ids.job] }, {}],
    'PUT /api/v1/me/notification-preferences': [
      { preferences: [{ event: 'job.succeeded', channel: 'inapp', enabled: true }] },
    ],
    'POST /api/v1/jobs': [
      { service: 'float-add', inputs: { a: 1, b: 2 } },
      { service: 'echo', inputs: { message: 'hello' } },
      { service: 'float-add', inputs: { a: 1, b: 2 }, targets: [ids.device] },
    ],
    'PATCH /api/v1/jobs/{id}': [{ priority: 1 }],
    'POST /api/v1/results': [
      {
        service: BENCHMARK,
        metrics: { score: 1, name: 'fuzz', passed: true, labels: ['a'], model: { depth: 2 } },
        executedAt: past,
        tags: ['fuzz'],
        visibility: 'public',
      },
    ],
    'PATCH /api/v1/results/{id}': [{ visibility: 'public' }],
    'PUT /api/v1/results/{id}/tags': [{ tags: ['fuzz', 'gpu'] }],
    'POST /api/v1/results/{id}/claim': [{ reason: 'a duplicate' }],
    'POST /api/v1/admin/claims/{id}/approve': [{ note: 'seen' }],
    'POST /api/v1/admin/claims/{id}/reject': [{ note: 'seen' }],
    'POST /api/v1/admin/entitlement-rules': [
      { entitlement: 'urn:labgate:fuzz:x', match: 'exact', role: 'operator' },
    ],
    'PATCH /api/v1/admin/users/{id}': [{ blocked: false }],
    'PATCH /api/v1/services/{key}': [{ enabled: true, priority: 1 }],
    'POST /api/v1/devices': [
      {
        name: 'fuzz-device',
        kind: 'gpu',
        runner: 'agent',
        services: ['*'],
        slots: 1,
        location: 'lab',
        labels: { room: 'a' },
      },
    ],
    'PATCH /api/v1/devices/{id}': [{ location: 'lab', labels: { room: 'b' }, slots: 50 }],
    'POST /api/v1/devices/{id}/commands': [{ type: 'custom', args: { a: 1 } }],
    'POST /api/v1/agent/heartbeat': [{ status: 'ok', metrics: { t: 1 }, runningJobs: [running] }],
    'POST /api/v1/agent/commands/{id}/ack': [{ ok: true, message: 'done' }],
    'POST /api/v1/agent/jobs/{id}/progress': [{ percent: 5, message: 'working' }],
    'POST /api/v1/agent/jobs/{id}/fail': [{ reason: 'broken' }],
  };

  return {
    base,
    headers: { ...roles, device: deviceHeaders },
    ids,
    runningJob,
    credentials: {
      anonymous: {},
      user: roles.user,
      other: roles.other,
      operator: roles.operator,
      admin: roles.admin,
      device: deviceHeaders,
      ticket: { 'X-Job-Token': ids.ticket },
      'personal access token': bearer(pat.token as string),
      'expired jwt': bearer(expired),
      'jwt signed by another key': bearer(forged),
      'unsigned jwt (alg none)': bearer(unsigned),
      'malformed jwt': bearer('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA'),
      'opaque garbage': bearer(randomBytes(16).toString('hex')),
      'unknown device token': bearer(`lgd_${randomBytes(24).toString('base64url')}`),
      'unknown personal token': bearer(`lgp_${randomBytes(24).toString('base64url')}`),
      'basic auth': { Authorization: 'Basic dXNlcjpwYXNzd29yZA==' },
      'empty bearer': { Authorization: 'Bearer ' },
      'huge bearer': bearer('x'.repeat(6000)),
      'bogus session cookie': { Cookie: 'labgate_session=garbage; other=1' },
      'bogus ticket': { 'X-Job-Token': 'lgt_nope' },
    },
    validCredentials(op) {
      if (op.operation['x-device']) {
        return ['device'];
      }
      const users = ['user', 'other', 'operator', 'admin', 'personal access token'];
      return op.operation['x-optional-auth'] ? [...users, 'ticket'] : users;
    },
    examples: (key) => examples[key] ?? [],
    // A followed log of a job that never runs (no worker here) sends nothing, not even its
    // headers, until output comes: it would only time out.
    queryOverrides: (key): Record<string, string> =>
      key === 'GET /api/v1/jobs/{id}/log' ? { follow: '0' } : {},
    queryDefaults: (key): Record<string, string> =>
      key === 'POST /api/v1/agent/jobs/claim' ? { wait: '0' } : {},
    pathValues(path, param) {
      if (param === 'key') {
        return ['float-add', 'echo', BENCHMARK];
      }
      if (param === 'name') {
        return ['plots/loss.png', 'a/../../b', 'x'];
      }
      return byPath.find(([pattern]) => pattern.test(path))?.[1] ?? [];
    },
    realFor(name) {
      if (/^targets$|device/i.test(name)) {
        return [ids.device];
      }
      if (name === 'service') {
        return ['float-add', 'echo', BENCHMARK, 'restricted-bench', 'sleep'];
      }
      if (/^ids?$/.test(name)) {
        return [ids.job, ids.result];
      }
      if (name === 'token') {
        return [ids.ticket];
      }
      if (name === 'wait') {
        return ['0', '1'];
      }
      return [];
    },
  };
}
