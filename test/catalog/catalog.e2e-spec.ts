import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import request from 'supertest';
import { stringify } from 'yaml';
import { CatalogService } from '../../src/catalog/catalog.service';
import type { UserPrincipal as Principal } from '../../src/common/principal';
import { ProblemException } from '../../src/common/problem';
import { ChangeFeed } from '../../src/database/change-feed';
import { demoUser, loginAs } from '../support/auth';
import { createTestDatabase, queryRows } from '../support/database';
import { freePort, LabgateProcess } from '../support/labgate-process';
import { waitUntil } from '../support/recovery';
import { clearRedisPrefix } from '../support/redis';
import { TEST_REDIS_URL } from '../support/services';
import { startTestApp, TestApp } from '../support/test-app';

const EXAMPLES = join(__dirname, '..', '..', 'services');
const RESTRICTED = 'urn:labgate:test:restricted';
const MEMBER = demoUser('user').entitlements[0];

/** The shipped examples plus two services that need an entitlement. */
function servicesDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'labgate-catalog-'));
  cpSync(EXAMPLES, dir, { recursive: true });
  const manifest = (key: string, requiredEntitlement: string) =>
    stringify({
      key,
      title: key,
      version: '1',
      requiredEntitlement,
      inputs: [{ name: 'n', type: 'int', min: 1, max: 9, default: 3 }],
      run: { command: ['node', '-e', '0'] },
    });
  writeFileSync(join(dir, 'restricted.yaml'), manifest('restricted', RESTRICTED));
  writeFileSync(join(dir, 'members.yaml'), manifest('members', MEMBER));
  return dir;
}

function user(entitlements: string[], roles: Principal['roles'] = ['user']): Principal {
  return {
    kind: 'user',
    userId: '00000000-0000-4000-8000-000000000001',
    issuer: 'https://idp.test',
    subject: 'someone',
    entitlements,
    roles,
    via: 'bearer',
  };
}

describe('service catalogue API', () => {
  let dir: string;
  let app: TestApp;
  let http: Server;
  let admin: string;
  let member: string;

  beforeAll(async () => {
    dir = servicesDir();
    app = await startTestApp({
      SERVICES_DIR: dir,
      ADMIN_ENTITLEMENTS: demoUser('admin').entitlements[1],
    });
    http = app.app.getHttpServer();
    admin = (await loginAs(http, 'admin')).cookie;
    member = (await loginAs(http, 'user')).cookie;
  });
  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const list = async (cookie: string) =>
    (await request(http).get('/api/v1/services').set('Cookie', cookie).expect(200)).body as Array<
      Record<string, unknown>
    >;

  it('lists the services a user may use, with their inputs and never what they run', async () => {
    const services = await list(member);
    expect(services.map((s) => s.key)).toEqual([
      'echo',
      'float-add',
      'members',
      'model-scaling-demo',
    ]);
    const echo = services[0];
    expect(echo).toEqual({
      key: 'echo',
      title: 'Echo',
      description: expect.any(String),
      priority: 0,
      version: '1.0.0',
      enabled: true,
      retentionDays: 7,
      inputs: [
        expect.objectContaining({
          name: 'message',
          type: 'string',
          required: true,
          maxLength: 1000,
        }),
        expect.objectContaining({
          name: 'file',
          type: 'file',
          required: false,
          maxBytes: 10 * 1024 ** 2,
        }),
      ],
    });
    const scaling = services[3];
    expect(scaling.inputs).toContainEqual(
      expect.objectContaining({
        name: 'method',
        type: 'choice',
        options: ['marker-based', 'height-ratio'],
        default: 'height-ratio',
        required: false,
      }),
    );
    expect(services[1].resultSchema).toMatchObject({ required: ['sum'] });
    const text = JSON.stringify(services);
    for (const secret of ['"run"', 'command', '{serviceDir}', '"dir"', '"file":', dir]) {
      expect(text).not.toContain(secret);
    }
  });

  it('hides a service that needs an entitlement the user lacks (404), shows it to an admin', async () => {
    const res = await request(http).get('/api/v1/services/restricted').set('Cookie', member);
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.detail).toBe('There is no service "restricted"');

    expect((await list(admin)).map((s) => s.key)).toContain('restricted');
    const shown = await request(http)
      .get('/api/v1/services/restricted')
      .set('Cookie', admin)
      .expect(200);
    expect(shown.body).toMatchObject({ key: 'restricted', requiredEntitlement: RESTRICTED });
    await request(http).get('/api/v1/services/members').set('Cookie', member).expect(200);
  });

  it('answers an unknown key with the same 404 problem, and 401 without sign-in', async () => {
    const res = await request(http).get('/api/v1/services/no-such-thing').set('Cookie', member);
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({
      status: 404,
      detail: 'There is no service "no-such-thing"',
      instance: '/api/v1/services/no-such-thing',
    });
    await request(http).get('/api/v1/services').expect(401);
    await request(http)
      .patch('/api/v1/services/no-such-thing')
      .set('Cookie', admin)
      .send({ enabled: false })
      .expect(404);
  });

  it('quotes only the start of a huge unknown key in the 404 (POST /jobs with 130 KB)', async () => {
    const key = 'k'.repeat(130_000);
    const res = await request(http)
      .post('/api/v1/jobs')
      .set('Cookie', member)
      .send({ service: key, inputs: {} });
    expect(res.status).toBe(404);
    expect(res.body.detail).toBe(`There is no service "${'k'.repeat(100)}"…`);
    expect(res.text.length).toBeLessThan(1000);
  });

  it('lets only an admin disable and enable a service, audited, shown to everyone', async () => {
    const denied = await request(http)
      .patch('/api/v1/services/float-add')
      .set('Cookie', member)
      .send({ enabled: false });
    expect(denied.status).toBe(403);

    const disabled = await request(http)
      .patch('/api/v1/services/float-add')
      .set('Cookie', admin)
      .send({ enabled: false })
      .expect(200);
    expect(disabled.body).toMatchObject({ key: 'float-add', enabled: false });
    expect((await list(member)).find((s) => s.key === 'float-add')?.enabled).toBe(false);
    const one = await request(http).get('/api/v1/services/float-add').set('Cookie', member);
    expect(one.body.enabled).toBe(false);

    await request(http)
      .patch('/api/v1/services/float-add')
      .set('Cookie', admin)
      .send({ enabled: true })
      .expect(200);
    expect((await list(member)).find((s) => s.key === 'float-add')?.enabled).toBe(true);

    const db = new Client({ connectionString: app.database.url });
    await db.connect();
    try {
      const audit = await db.query(
        `select action, actor_kind, details from audit_event
          where target_type = 'service' and target_id = 'float-add' order by at`,
      );
      expect(audit.rows).toEqual([
        { action: 'service.disable', actor_kind: 'user', details: { before: true, after: false } },
        { action: 'service.enable', actor_kind: 'user', details: { before: false, after: true } },
      ]);
      const state = await db.query(`select enabled, updated_by from service_state where key = $1`, [
        'float-add',
      ]);
      expect(state.rows).toEqual([{ enabled: true, updated_by: expect.any(String) }]);
    } finally {
      await db.end();
    }
  });

  it.each([
    [{ enabled: 'no' }, ['enabled']],
    [{}, ['enabled']],
    [{ enabled: true, command: ['rm'] }, ['command']],
    [{ priority: 'high' }, ['priority']],
    [{ priority: 5000 }, ['priority']],
  ])('refuses the body %j with field errors', async (body, fields) => {
    const res = await request(http).patch('/api/v1/services/echo').set('Cookie', admin).send(body);
    expect(res.status).toBe(400);
    expect([...new Set(res.body.errors.map((e: { field: string }) => e.field))]).toEqual(fields);
  });

  it('gives other modules usable manifests only: 404 not entitled, 409 disabled', async () => {
    const catalog = app.app.get(CatalogService);
    const someone = user([MEMBER]);
    await expect(catalog.requireUsable('echo', someone)).resolves.toMatchObject({
      key: 'echo',
      run: { command: ['node', '{serviceDir}/echo.js'] },
    });
    await expect(catalog.requireUsable('restricted', someone)).rejects.toMatchObject({
      status: 404,
      message: 'There is no service "restricted"',
    });
    await expect(catalog.requireUsable('restricted', user([RESTRICTED]))).resolves.toMatchObject({
      key: 'restricted',
    });
    await expect(
      catalog.requireUsable('restricted', user([], ['user', 'admin'])),
    ).resolves.toMatchObject({ key: 'restricted' });

    await request(http)
      .patch('/api/v1/services/members')
      .set('Cookie', admin)
      .send({ enabled: false })
      .expect(200);
    const refused = catalog.requireUsable('members', someone);
    await expect(refused).rejects.toBeInstanceOf(ProblemException);
    await expect(refused).rejects.toMatchObject({
      status: 409,
      message: 'Service "members" is disabled by an administrator',
    });
  });

  it("keeps a service's settings in memory until PostgreSQL notifies a change, whoever made it", async () => {
    // A change made with the table's trigger off notifies nobody: an unchanged answer after it
    // came from memory, a changed one from the database.
    const catalog = app.app.get(CatalogService);
    const someone = user([MEMBER]);
    const sql = (text: string) => queryRows(app.database.url, text);
    const priority = async () => (await catalog.usable('echo', someone)).priority;
    /** Whether a submission to echo would be taken now (a disabled service is refused). */
    const usable = () =>
      catalog.usable('echo', someone).then(
        () => true,
        () => false,
      );
    const fast = { intervalMs: 10, timeoutMs: 10_000 };
    const manifestPriority = catalog.manifest('echo')!.priority;
    await waitUntil(
      'the process listens',
      () => Promise.resolve(app.app.get(ChangeFeed).active),
      fast,
    );
    expect(await priority()).toBe(manifestPriority); // read, and kept

    await sql(`alter table service_state disable trigger service_state_changed_notify`);
    try {
      await sql(`insert into service_state (key, enabled, priority, updated_at)
                 values ('echo', true, 5, now())`);
    } finally {
      await sql(`alter table service_state enable trigger service_state_changed_notify`);
    }
    expect(await priority()).toBe(manifestPriority);

    // Another connection changes it, as another API process or the CLI would.
    await sql(`update service_state set priority = 6 where key = 'echo'`);
    await waitUntil('the new priority is seen', async () => (await priority()) === 6, fast);
    await sql(`update service_state set enabled = false where key = 'echo'`);
    await waitUntil('the service is seen disabled', async () => !(await usable()), fast);
    await expect(catalog.usable('echo', someone)).rejects.toMatchObject({ status: 409 });
    await sql(`delete from service_state where key = 'echo'`);
    await waitUntil('the service is seen enabled again', usable, fast);
    expect(await priority()).toBe(manifestPriority);
  });

  it('documents the API in OpenAPI without the run section', async () => {
    const doc = (await request(http).get('/docs-json').expect(200)).body;
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/api/v1/services', '/api/v1/services/{key}']),
    );
    expect(Object.keys(doc.paths['/api/v1/services/{key}'])).toEqual(
      expect.arrayContaining(['get', 'patch']),
    );
    const properties = Object.keys(doc.components.schemas.ServiceDto.properties);
    expect(properties).toEqual(expect.arrayContaining(['key', 'inputs', 'enabled']));
    expect(properties).not.toContain('run');
  });
});

describe('service catalogue at boot', () => {
  it('stops the process on a bad manifest, naming the file and the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'labgate-bad-catalog-'));
    const file = join(dir, 'echo.yaml');
    writeFileSync(
      file,
      stringify({
        key: 'echo',
        title: 'Echo',
        version: '1',
        inputs: [{ name: 'x', type: 'floaty' }],
        run: { command: 'node echo.js' },
      }),
    );
    const database = await createTestDatabase();
    const prefix = `lgtest-catalog-${process.pid}`;
    const proc = new LabgateProcess('main', {
      NODE_ENV: 'test',
      PORT: String(await freePort()),
      DATABASE_URL: database.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: prefix,
      VAR_DIR: dir,
      DEV_IDP_PORT: '0',
      SERVICES_DIR: dir,
    });
    try {
      expect((await proc.exited).code).toBe(1);
      expect(proc.output).toContain('Invalid service manifests:');
      expect(proc.output).toContain(
        `  - ${file}: inputs[0].type: "floaty" is not one of file, volume`,
      );
      expect(proc.output).toContain(`  - ${file}: run.command: must be a list of arguments`);
      expect(proc.output).not.toMatch(/listening on/);
    } finally {
      await proc.stop();
      await database.drop();
      await clearRedisPrefix(prefix);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
