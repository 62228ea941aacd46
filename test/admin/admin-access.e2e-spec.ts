import type { Server } from 'node:http';
import request from 'supertest';
import { bearer, demoUser, loginAs } from '../support/auth';
import { createDevice, roleHeaders, ROLE_ENV, type RoleHeaders } from '../support/devices';
import { startTestApp, TestApp } from '../support/test-app';

const BOARD = '/api/v1/admin/queues';
const SOME_ID = '00000000-0000-4000-8000-000000000000';
const inAWeek = () => new Date(Date.now() + 7 * 24 * 3600_000).toISOString();

interface Operation {
  method: string;
  path: string;
}

/** Every operation Swagger says needs the admin role, with its path parameters filled in. */
async function adminOperations(http: Server): Promise<Operation[]> {
  const doc = (await request(http).get('/docs-json').expect(200)).body as {
    paths: Record<string, Record<string, { 'x-roles'?: string[] }>>;
  };
  return Object.entries(doc.paths).flatMap(([path, operations]) =>
    Object.entries(operations)
      .filter(([, op]) => op['x-roles']?.includes('admin'))
      .map(([method, _op]) => ({
        method,
        path: path.replace(/\{key\}/g, 'echo').replace(/\{[^}]+\}/g, SOME_ID),
      })),
  );
}

function call(http: Server, { method, path }: Operation) {
  return request(http)[method as 'get' | 'post' | 'patch' | 'put' | 'delete'](path);
}

async function queueNames(http: Server, headers: Record<string, string>): Promise<string[]> {
  const res = await request(http).get(`${BOARD}/api/queues`).set(headers).expect(200);
  return (res.body.queues as Array<{ name: string }>).map((q) => q.name);
}

describe('admin access', () => {
  let app: TestApp;
  let http: Server;
  let roles: RoleHeaders;
  let adminSession: string;
  let userSession: string;

  beforeAll(async () => {
    // No worker, so that no `local` device appears: the device queues are the test's own.
    app = await startTestApp({
      ...ROLE_ENV,
      ADMIN_ENTITLEMENTS: `${ROLE_ENV.ADMIN_ENTITLEMENTS},${demoUser('admin').entitlements[1]}`,
      ROLE: 'api',
      LOCAL_DEVICE: 'false',
    });
    http = app.app.getHttpServer();
    roles = await roleHeaders(app);
    adminSession = (await loginAs(http, 'admin')).cookie;
    userSession = (await loginAs(http, 'user')).cookie;
  });
  afterAll(() => app?.close());

  describe('admin API routes', () => {
    let operations: Operation[];

    beforeAll(async () => {
      operations = await adminOperations(http);
    });

    it('are all marked admin in Swagger, the new ones included', () => {
      const paths = operations.map((o) => `${o.method.toUpperCase()} ${o.path}`);
      expect(paths).toEqual(
        expect.arrayContaining([
          'GET /api/v1/admin/users',
          `GET /api/v1/admin/users/${SOME_ID}`,
          `PATCH /api/v1/admin/users/${SOME_ID}`,
          'GET /api/v1/admin/audit',
          'GET /api/v1/admin/audit/actions',
          'GET /api/v1/admin/entitlement-rules',
          'GET /api/v1/admin/claims',
          'PATCH /api/v1/services/echo',
          'POST /api/v1/devices',
          `PATCH /api/v1/devices/${SOME_ID}`,
          `DELETE /api/v1/devices/${SOME_ID}`,
          `POST /api/v1/devices/${SOME_ID}/rotate-token`,
        ]),
      );
    });

    it('refuse an anonymous caller with 401 on every one', async () => {
      for (const op of operations) {
        const res = await call(http, op);
        expect({ op, status: res.status }).toEqual({ op, status: 401 });
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      }
    });

    it('refuse a plain user (session or bearer) and an operator with 403 on every one', async () => {
      for (const op of operations) {
        for (const [who, headers] of [
          ['user session', { Cookie: userSession }],
          ['user bearer', roles.user],
          ['operator', roles.operator],
        ] as const) {
          const res = await call(http, op).set(headers);
          expect({ op, who, status: res.status }).toEqual({ op, who, status: 403 });
        }
      }
    });

    it('let an admin in', async () => {
      await request(http).get('/api/v1/admin/users').set(roles.admin).expect(200);
      await request(http).get('/api/v1/admin/audit').set({ Cookie: adminSession }).expect(200);
    });
  });

  describe('queue dashboard', () => {
    it('refuses an anonymous API caller with a 401 problem', async () => {
      for (const path of [BOARD, `${BOARD}/`, `${BOARD}/api/queues`, `${BOARD}/static/x.js`]) {
        const res = await request(http).get(path).set('Accept', 'application/json');
        expect({ path, status: res.status }).toEqual({ path, status: 401 });
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
        expect(JSON.stringify(res.body)).not.toMatch(/"queues"/);
      }
    });

    it('leads /admin/queues to the dashboard under the API prefix', async () => {
      const res = await request(http).get('/admin/queues').expect(308);
      expect(res.headers.location).toBe(BOARD);
      const deep = await request(http).get('/admin/queues/api/queues?x=1').expect(308);
      expect(deep.headers.location).toBe(`${BOARD}/api/queues?x=1`);
    });

    it('sends an anonymous browser to sign in, and shows it nothing', async () => {
      const res = await request(http).get(BOARD).set('Accept', 'text/html').expect(302);
      expect(res.headers.location).toBe(`/api/v1/auth/login?returnTo=${encodeURIComponent(BOARD)}`);
      expect(res.text).not.toMatch(/labgate queues/);
    });

    it('refuses bad credentials with a 401', async () => {
      await request(http).get(BOARD).set(bearer('lgp_not-a-token')).expect(401);
      await request(http)
        .get(BOARD)
        .set('Cookie', 'labgate_session=lgs_not-a-session')
        .set('Accept', 'text/html')
        .expect(401);
    });

    it('refuses a plain user and an operator with a 403 problem', async () => {
      for (const headers of [{ Cookie: userSession }, roles.user, roles.operator]) {
        for (const path of [BOARD, `${BOARD}/api/queues`]) {
          const res = await request(http).get(path).set(headers);
          expect({ path, status: res.status }).toEqual({ path, status: 403 });
          expect(res.body.detail).toBe('The queue dashboard needs the admin role.');
        }
      }
    });

    it('takes a personal access token only with the admin scope', async () => {
      const token = async (scopes: string[]) =>
        (
          await request(http)
            .post('/api/v1/me/tokens')
            .set('Cookie', adminSession)
            .send({ name: scopes.join('+'), expiresAt: inAWeek(), scopes })
            .expect(201)
        ).body.token as string;
      await request(http)
        .get(`${BOARD}/api/queues`)
        .set(bearer(await token(['read'])))
        .expect(403);
      await request(http)
        .get(`${BOARD}/api/queues`)
        .set(bearer(await token(['read', 'admin'])))
        .expect(200);
    });

    it('serves the board to an admin browser session', async () => {
      const res = await request(http)
        .get(BOARD)
        .set('Cookie', adminSession)
        .set('Accept', 'text/html')
        .expect(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.text).toContain(`<base href="${BOARD}/" />`);
      expect(res.text).toContain('<title>labgate queues</title>');
      // Its scripts are served under the same guard.
      const script = /src="(static\/js\/main\.[\w.]+\.js)"/.exec(res.text)![1];
      await request(http).get(`${BOARD}/${script}`).set('Cookie', adminSession).expect(200);
      await request(http).get(`${BOARD}/${script}`).set('Cookie', userSession).expect(403);
    });

    it('is read-only: changes are refused, with or without the admin role', async () => {
      for (const headers of [roles.admin, roles.user, {}]) {
        const res = await request(http).put(`${BOARD}/api/queues/jobs/pause`).set(headers);
        expect(res.status).toBe(405);
      }
      const res = await request(http).get(`${BOARD}/api/queues`).set(roles.admin).expect(200);
      for (const queue of res.body.queues as Array<{ readOnlyMode: boolean }>) {
        expect(queue.readOnlyMode).toBe(true);
      }
    });

    it('shows every shared queue and the queues of local and SSH devices, including new ones', async () => {
      expect(await queueNames(http, roles.admin)).toEqual(
        expect.arrayContaining(['system', 'jobs', 'notifications']),
      );
      // Registered after boot, and after the board was first shown.
      const local = await createDevice(http, roles.admin, { runner: 'local', services: ['*'] });
      const ssh = await createDevice(http, roles.admin, {
        runner: 'ssh',
        kind: 'hpc',
        ssh: {
          host: 'login.hpc.example.org',
          username: 'labgate',
          privateKeyFile: '/run/secrets/hpc_key',
          hostFingerprint: `SHA256:${'A'.repeat(42)}Q`,
          workDir: '/scratch/labgate',
          submitCommand: 'sbatch --parsable {script}',
        },
      });
      // Agents pull their work from PostgreSQL: they have no Bull queue to show.
      const agent = await createDevice(http, roles.admin, { runner: 'agent' });

      const names = await queueNames(http, { Cookie: adminSession });
      expect(names).toEqual(
        expect.arrayContaining([`device.${local.id}`, `device.${ssh.id}`, 'system']),
      );
      expect(names).not.toContain(`device.${agent.id}`);
      const shown = (
        await request(http).get(`${BOARD}/api/queues`).set(roles.admin).expect(200)
      ).body.queues.find((q: { name: string }) => q.name === `device.${local.id}`);
      expect(shown.displayName).toBe(`device ${local.body.name}`);
      expect(shown.description).toBe(`local runner, 1 slot; Bull queue device.${local.id}`);

      // A renamed device is shown under its new name at the next refresh.
      await request(http)
        .patch(`/api/v1/devices/${local.id}`)
        .set(roles.admin)
        .send({ name: `${local.body.name}-renamed` })
        .expect(200);
      const renamed = (
        await request(http).get(`${BOARD}/api/queues`).set(roles.admin).expect(200)
      ).body.queues.find((q: { name: string }) => q.name === `device.${local.id}`);
      expect(renamed.displayName).toBe(`device ${local.body.name}-renamed`);

      await request(http).delete(`/api/v1/devices/${local.id}`).set(roles.admin).expect(204);
      expect(await queueNames(http, roles.admin)).not.toContain(`device.${local.id}`);
    });
  });
});
