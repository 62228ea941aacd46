import { randomBytes } from 'node:crypto';
import { ResultsFeed } from '../../../src/results/results-feed';
import { roleHeaders } from '../devices';
import { followEvents } from '../jobs';
import { BENCHMARK, PLOTTER } from '../results';
import type { TestApp } from '../test-app';
import { bearer, call, type Answer, type Call, type Headers } from './http';

/** The callers of the authorization matrix, in the order of its columns. */
export const CALLERS = [
  'anonymous',
  'user',
  'other',
  'operator',
  'admin',
  'device',
  'ticket',
] as const;
export type Caller = (typeof CALLERS)[number];

export interface Ticketed {
  id: string;
  /** The job's ticket token (lgt_…). */
  token: string;
}

/**
 * The objects the matrix requests touch, all real: owned by `user` unless said otherwise, so
 * that `other` meets real objects that are not theirs. `fresh*` make a new one per request,
 * for the requests that change or remove what they touch.
 */
export interface World {
  base: string;
  headers: Record<Exclude<Caller, 'ticket'>, Headers>;
  /** A plotter job that succeeded: a log, a result archive, a result with artifacts. */
  job: Ticketed;
  /** A job waiting for the parking device, which never comes: it stays queued. */
  parked: Ticketed;
  /** The private result of `job`, and the name of one of its files. */
  result: { id: string; artifact: string };
  /** The agent device `device` authenticates as, and a command sent to it. */
  device: { id: string; token: string; command: string };
  /** Jobs running on that device: one to read and report progress on, one to complete, one to fail. */
  running: { inputs: string; complete: string; fail: string };
  /** The id of `user` (GET /api/v1/me). */
  userId: string;
  /** A device for the admin routes that change a device (never the one above). */
  spare: string;
  webhook: string;
  freshParked(): Promise<Ticketed & { batchId: string }>;
  freshCancelled(): Promise<Ticketed>;
  freshDevice(): Promise<string>;
  freshToken(): Promise<string>;
  freshWebhook(): Promise<string>;
  freshRule(): Promise<string>;
  freshResult(visibility: 'private' | 'institution'): Promise<string>;
  freshClaim(): Promise<string>;
  send(req: Call): Promise<Answer>;
}

/** Sends `req` as `who` and fails with the answer unless it is `status`. */
async function expectStatus(world: Pick<World, 'send'>, req: Call, status: number) {
  const res = await world.send(req);
  if (res.status !== status) {
    throw new Error(`${req.method} ${req.path}: expected ${status}, got ${res.status} ${res.text}`);
  }
  return res.json as Record<string, unknown>;
}

const unique = () => randomBytes(5).toString('hex');

/**
 * Builds the world on an app started with ROLE=all (the worker runs the plotter job on the
 * local device), ROLE_ENV, the results services and WEBHOOK_ALLOW_PRIVATE=true.
 */
export async function buildWorld(app: TestApp, base: string): Promise<World> {
  const roles = await roleHeaders(app);
  const send = (req: Call) => call(base, req);
  const post = (path: string, headers: Headers, body: unknown, status = 201) =>
    expectStatus({ send }, { method: 'POST', path, headers, body }, status);

  const registered = async (name: string, services: string[], slots = 1) => {
    const body = await post('/api/v1/devices', roles.admin, {
      name: `${name}-${unique()}`,
      kind: 'workstation',
      runner: 'agent',
      services,
      slots,
    });
    return { id: body.id as string, token: body.token as string };
  };
  // Never heartbeats, so jobs aimed at it wait in the queue for as long as the test needs.
  const parking = await registered('parking', ['*']);
  const agent = await registered('matrix-agent', [BENCHMARK], 3);
  const spare = await registered('spare', ['*']);

  const submitParked = async (who: Headers = roles.user) => {
    const body = await post('/api/v1/jobs', who, {
      service: 'float-add',
      inputs: { a: 1, b: 2 },
      targets: [parking.id],
    });
    const [job] = body.jobs as Array<{ id: string; token: string }>;
    return { id: job.id, token: job.token, batchId: body.batchId as string };
  };

  // The plotter job runs on the local device (the agent device offers only the benchmark).
  const submitted = await post('/api/v1/jobs', roles.user, { service: PLOTTER, inputs: {} });
  const job = { id: submitted.id as string, token: submitted.token as string };
  await followEvents(`${base}/api/v1/jobs/${job.id}/events`, roles.user);
  const final = await expectStatus(
    { send },
    { method: 'GET', path: `/api/v1/jobs/${job.id}`, headers: roles.user },
    200,
  );
  if (final.status !== 'succeeded') {
    throw new Error(`the plotter job ended ${String(final.status)}: ${String(final.reason)}`);
  }
  await app.app.get(ResultsFeed).drain();
  const results = await expectStatus(
    { send },
    { method: 'GET', path: `/api/v1/results?owner=me&service=${PLOTTER}`, headers: roles.user },
    200,
  );
  const result = (results.items as Array<{ id: string; jobId: string }>).find(
    (r) => r.jobId === job.id,
  );
  if (!result) {
    throw new Error(`no result for job ${job.id}: ${JSON.stringify(results)}`);
  }

  // Three jobs on the agent device, claimed by it: running there.
  const deviceHeaders = bearer(agent.token);
  await post('/api/v1/agent/heartbeat', deviceHeaders, {}, 200);
  const running: string[] = [];
  for (let i = 0; i < 3; i++) {
    const batch = await post('/api/v1/jobs', roles.user, {
      service: BENCHMARK,
      inputs: {},
      targets: [agent.id],
    });
    const id = (batch.jobs as Array<{ id: string }>)[0].id;
    const claimed = await post('/api/v1/agent/jobs/claim?wait=20', deviceHeaders, undefined, 200);
    if (claimed.id !== id) {
      throw new Error(`the agent claimed ${String(claimed.id)}, not ${id}`);
    }
    running.push(id);
  }
  const command = await post(
    `/api/v1/devices/${agent.id}/commands`,
    roles.operator,
    { type: 'custom', args: { matrix: true } },
    201,
  );

  const webhook = async () =>
    (
      await post('/api/v1/me/webhooks', roles.user, {
        url: 'http://127.0.0.1:9/labgate-hook',
        events: ['job.succeeded'],
      })
    ).id as string;

  const freshResult = async (visibility: 'private' | 'institution') =>
    (
      await post('/api/v1/results', roles.user, {
        service: BENCHMARK,
        metrics: { score: 1 },
        executedAt: new Date(Date.now() - 60_000).toISOString(),
        visibility,
      })
    ).id as string;

  const me = await expectStatus(
    { send },
    { method: 'GET', path: '/api/v1/me', headers: roles.user },
    200,
  );

  return {
    base,
    headers: { anonymous: {}, ...roles, device: deviceHeaders },
    userId: me.id as string,
    job,
    parked: await submitParked(),
    result: { id: result.id, artifact: 'plots/loss.png' },
    device: { ...agent, command: command.id as string },
    running: { inputs: running[0], complete: running[1], fail: running[2] },
    spare: spare.id,
    webhook: await webhook(),
    freshParked: () => submitParked(),
    async freshCancelled() {
      const parked = await submitParked();
      await post(`/api/v1/jobs/${parked.id}/cancel`, roles.user, undefined, 200);
      return parked;
    },
    freshDevice: async () => (await registered('doomed', ['*'])).id,
    freshToken: async () =>
      (
        await post('/api/v1/me/tokens', roles.user, {
          name: `matrix-${unique()}`,
          scopes: ['read'],
          expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
        })
      ).id as string,
    freshWebhook: webhook,
    freshRule: async () =>
      (
        await post('/api/v1/admin/entitlement-rules', roles.admin, {
          entitlement: `urn:labgate:matrix:${unique()}`,
          match: 'exact',
          role: 'operator',
        })
      ).id as string,
    freshResult,
    async freshClaim() {
      const id = await freshResult('institution');
      return (await post(`/api/v1/results/${id}/claim`, roles.other, { reason: 'a duplicate' }))
        .id as string;
    },
    send,
  };
}
