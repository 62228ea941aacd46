import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import Redis from 'ioredis';
import request from 'supertest';
import { loadConfig, type Environment } from '../../src/config';
import { bearer, mintAccessToken } from '../support/auth';
import { createTestDatabase, queryRows as sql } from '../support/database';
import { baseUrl, followEvents } from '../support/jobs';
import { testServicesDir } from '../support/services.fixture';
import { startTestApp, TestApp } from '../support/test-app';
import { ROOT } from '../support/watched-process';
import { compileCli, lines, runCli } from './cli-process';

jest.setTimeout(120_000);

const COMMANDS = [
  'migrate',
  'migration:create',
  'config:init',
  'token:create',
  'device:create',
  'jobs:requeue',
  'retention:run',
];

/** A failed command: status 1, nothing on stdout, exactly one line on stderr. */
function expectOneLineError(run: { code: number | null; stdout: string; stderr: string }) {
  expect({ code: run.code, stdout: run.stdout, lines: lines(run.stderr).length }).toEqual({
    code: 1,
    stdout: '',
    lines: 1,
  });
  expect(run.stderr).toMatch(/^error: \S/);
  expect(run.stderr).not.toMatch(/\n\s+at /);
}

/** True once the process is gone (or a zombie nobody reaped yet). */
function isDead(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** The test services plus `hold`: runs until stopped, its pid in outputs/pid. */
function servicesWithHold(): string {
  const dir = testServicesDir();
  writeFileSync(
    join(dir, 'hold.yaml'),
    `key: hold
title: Hold
description: Runs until stopped; for requeue tests.
version: 1.0.0
inputs: []
run:
  command: [node, -e, "require('fs').writeFileSync('outputs/pid', String(process.pid)); setInterval(() => {}, 1000);"]
  timeoutSeconds: 600
retentionDays: 1
`,
  );
  return dir;
}

async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('the CLI (npm run cli)', () => {
  let app: TestApp;
  let http: Server;
  let env: Environment;
  let alice: Record<string, string>;
  const scratch = mkdtempSync(join(tmpdir(), 'labgate-cli-'));

  const services = servicesWithHold();
  let uncompile: (() => void) | undefined;

  beforeAll(async () => {
    [app, uncompile] = await Promise.all([
      startTestApp({ ROLE: 'all', SERVICES_DIR: services }),
      compileCli(),
    ]);
    await app.app.listen(0, '127.0.0.1');
    http = app.app.getHttpServer();
    // The CLI on the app's own database, Redis prefix and storage: what an operator's shell
    // next to a running installation has.
    env = {
      NODE_ENV: 'test',
      DATABASE_URL: app.database.url,
      REDIS_URL: app.config.redis.url,
      REDIS_PREFIX: app.config.redis.prefix,
      VAR_DIR: app.varDir,
      SERVICES_DIR: services,
    };
    alice = bearer(
      await mintAccessToken(app, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 }),
    );
  });

  afterAll(async () => {
    await app?.close();
    uncompile?.();
    rmSync(scratch, { recursive: true, force: true });
    rmSync(services, { recursive: true, force: true });
  });

  const audit = (action: string) =>
    sql<{ actor_kind: string; request_id: string | null; details: Record<string, unknown> }>(
      app.database.url,
      'select actor_kind, request_id, details from audit_event where action = $1 order by at',
      [action],
    );

  describe('help and arguments', () => {
    it('documents every command with --help, on stdout, with status 0', async () => {
      const runs = await Promise.all(
        [[], ...COMMANDS.map((c) => [c])].map((args) => runCli([...args, '--help'], {})),
      );
      expect(runs[0].stdout).toMatch(/^Usage: npm run cli -- \[--verbose\] <command>/);
      for (const command of COMMANDS) {
        expect(runs[0].stdout).toContain(command);
      }
      runs.slice(1).forEach((run, i) => {
        expect({ command: COMMANDS[i], code: run.code, stderr: run.stderr }).toEqual({
          command: COMMANDS[i],
          code: 0,
          stderr: '',
        });
        expect(run.stdout).toContain(`Usage: npm run cli -- ${COMMANDS[i]}`);
      });
    });

    it('runs through the npm script of a checkout', async () => {
      const child = spawn('npm', ['run', '--silent', 'cli', '--', 'retention:run', '--help'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH, HOME: process.env.HOME },
      });
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      const [code] = (await once(child, 'close')) as [number];
      expect(code).toBe(0);
      expect(stdout).toMatch(/^Usage: npm run cli -- retention:run/);
    });

    it('refuses a bad argument with status 1 and one line naming it', async () => {
      const [kind, days, state, unknown, missing, both, scope] = await Promise.all([
        runCli(
          [
            'device:create',
            '--name',
            'x',
            '--kind',
            'spaceship',
            '--runner',
            'agent',
            '--services',
            'echo',
          ],
          env,
        ),
        runCli(['token:create', '--user', 'a@b.org', '--expires-days', '0'], env),
        runCli(['jobs:requeue', '--state', 'queued'], env),
        runCli(['frobnicate'], env),
        runCli(['device:create', '--name', 'x'], env),
        runCli(['token:create', '--user', 'a@b.org', '--issuer', 'urn:x', '--subject', 's'], env),
        runCli(
          [
            'token:create',
            '--user',
            'urn:labgate:local:half',
            '--create',
            '--admin',
            '--scopes',
            'read,root',
          ],
          env,
        ),
      ]);
      for (const run of [kind, days, state, unknown, missing, both, scope]) {
        expectOneLineError(run);
      }
      expect(kind.stderr).toMatch(/kind must be one of gpu, workstation, enclosure, hpc/);
      expect(days.stderr).toMatch(/--expires-days.*must be a whole number from 1 to 366/);
      expect(state.stderr).toMatch(/lifecycle allows it from assigned, running, failed only/);
      expect(unknown.stderr).toMatch(/unknown command 'frobnicate'/);
      expect(missing.stderr).toMatch(/required option '--kind <kind>'/);
      expect(both.stderr).toMatch(/either --user, or --issuer and --subject/);
      expect(scope.stderr).toMatch(/each value in scopes must be one of .*read, write, admin/);
      // Refused before anything was written: no half-made admin.
      const half = await sql(app.database.url, `select 1 from app_user where subject = 'half'`);
      expect(half).toEqual([]);
    });

    it('says in one line what is wrong with the configuration', async () => {
      const run = await runCli(['migrate'], { ...env, DATABASE_URL: 'not a url', PORT: 'x' });
      expectOneLineError(run);
      expect(run.stderr).toMatch(/^error: invalid configuration: /);
      expect(run.stderr).toContain('DATABASE_URL: "not a url" is not a valid URL');
      expect(run.stderr).toContain('PORT: "x" is not a whole number');
    });

    it('shows the stack trace of an error with --verbose only', async () => {
      const run = await runCli(['--verbose', 'token:create', '--user', 'nobody@labgate.test'], env);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^error: there is no user nobody@labgate\.test/m);
      expect(run.stderr).toMatch(/\n\s+at /);
    });
  });

  describe('migrate', () => {
    it('applies every pending migration, lists them, and has nothing to do the second time', async () => {
      const empty = await createTestDatabase({ empty: true });
      try {
        const migrations = readdirSync(join(ROOT, 'migrations'))
          .filter((f) => /^Migration\d+\.ts$/.test(f))
          .map((f) => f.replace(/\.ts$/, ''))
          .sort();
        const first = await runCli(['migrate'], { ...env, DATABASE_URL: empty.url });
        expect(first.code).toBe(0);
        expect(lines(first.stdout)).toEqual([
          ...migrations.map((m) => `applied ${m}`),
          `${migrations.length} migration(s) applied, ${migrations.length} in all`,
        ]);
        const tables = await sql<{ n: number }>(
          empty.url,
          `select count(*)::int as n from information_schema.tables where table_name = 'job'`,
        );
        expect(tables[0].n).toBe(1);
        const second = await runCli(['migrate'], { ...env, DATABASE_URL: empty.url });
        expect(lines(second.stdout)).toEqual([
          `no pending migrations (${migrations.length} applied)`,
        ]);
        // Audited once: the run that applied them.
        expect(
          await sql(
            empty.url,
            `select actor_kind, details from audit_event where action = 'database.migrate'`,
          ),
        ).toEqual([{ actor_kind: 'system', details: { applied: migrations } }]);
      } finally {
        await empty.drop();
      }
    });
  });

  describe('migration:create', () => {
    it('writes a migration as npm run migration:create does (in a copy of the checkout)', async () => {
      // Never in this checkout: the test must not add a migration to the repository.
      const copy = join(scratch, 'checkout');
      for (const entry of ['package.json', 'tsconfig.json', 'src', 'migrations']) {
        cpSync(join(ROOT, entry), join(copy, entry), { recursive: true });
      }
      symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
      const before = readdirSync(join(ROOT, 'migrations'));
      const run = await runCli(
        ['migration:create', '--blank', '--name', 'CliTestMigration'],
        env,
        copy,
      );
      expect(run.code).toBe(0);
      const [, file] =
        /(Migration\d+_CliTestMigration\.ts) successfully created/.exec(run.stdout) ?? [];
      expect(file).toBeDefined();
      expect(readdirSync(join(copy, 'migrations'))).toContain(file);
      expect(readdirSync(join(ROOT, 'migrations'))).toEqual(before);
    });

    it('needs DATABASE_URL, and says so in one line', async () => {
      const run = await runCli(['migration:create'], { NODE_ENV: 'test', VAR_DIR: scratch });
      expectOneLineError(run);
      expect(run.stderr).toMatch(/needs DATABASE_URL/);
    });
  });

  describe('config:init', () => {
    it('writes a .env with fresh secrets that labgate loads, readable by its owner only', async () => {
      const [a, b] = [join(scratch, 'a.env'), join(scratch, 'b.env')];
      const runs = await Promise.all([a, b].map((p) => runCli(['config:init', '--path', p], {})));
      for (const run of runs) {
        expect(run.code).toBe(0);
        expect(lines(run.stdout)).toEqual([expect.stringMatching(/^wrote .*: METRICS_TOKEN/)]);
      }
      const [envA, envB] = [a, b].map((p) => parseDotenv(readFileSync(p)));
      expect(envA.METRICS_TOKEN).toMatch(/^[\w-]{43}$/);
      expect(envA.METRICS_TOKEN).not.toBe(envB.METRICS_TOKEN);
      expect(loadConfig(envA).http.metricsToken).toBe(envA.METRICS_TOKEN);
      expect(statSync(a).mode & 0o777).toBe(0o600);
    });

    it('refuses to overwrite a file, which stays as it was', async () => {
      const path = join(scratch, 'kept.env');
      expect((await runCli(['config:init', '--path', path], {})).code).toBe(0);
      const before = readFileSync(path, 'utf8');
      const again = await runCli(['config:init', '--path', path], {});
      expectOneLineError(again);
      expect(again.stderr).toMatch(/kept\.env exists; config:init never overwrites/);
      expect(readFileSync(path, 'utf8')).toBe(before);
    });
  });

  describe('token:create', () => {
    it('bootstraps an admin without SSO: its token authenticates as admin against the API', async () => {
      const run = await runCli(
        [
          'token:create',
          '--user',
          'urn:labgate:local:ops',
          '--create',
          '--email',
          'ops@labgate.test',
          '--admin',
          '--name',
          'bootstrap',
        ],
        env,
      );
      expect(run.code).toBe(0);
      expect(lines(run.stdout)).toEqual([expect.stringMatching(/^lgp_[\w-]+$/)]);
      expect(run.stderr).toMatch(/user created.*roles user, operator, admin/);
      const token = run.stdout.trim();
      const me = await request(http).get('/api/v1/me').set(bearer(token)).expect(200);
      expect(me.body.roles).toEqual(expect.arrayContaining(['admin']));
      const rules = await request(http)
        .get('/api/v1/admin/entitlement-rules')
        .set(bearer(token))
        .expect(200);
      expect(rules.body).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ entitlement: 'urn:labgate:local:admin', role: 'admin' }),
        ]),
      );
      // One row per change, all by labgate itself (no user acted) and of this one run.
      const [created] = await audit('token.create');
      expect(await audit('token.create')).toEqual([
        {
          actor_kind: 'system',
          request_id: expect.stringMatching(/^cli:/),
          details: expect.objectContaining({
            name: 'bootstrap',
            owner: expect.any(String),
            scopes: ['read', 'write', 'admin'],
          }),
        },
      ]);
      const run1 = { actor_kind: 'system', request_id: created.request_id };
      expect(await audit('user.create')).toEqual([
        {
          ...run1,
          details: expect.objectContaining({ subject: 'ops', email: 'ops@labgate.test' }),
        },
      ]);
      expect(await audit('user.grant_admin')).toEqual([expect.objectContaining(run1)]);
      expect(await audit('entitlement_rule.create')).toEqual([expect.objectContaining(run1)]);
    });

    it('names an existing user by email; without the admin scope the token acts as a plain user', async () => {
      const run = await runCli(
        ['token:create', '--user', 'OPS@labgate.test', '--scopes', 'read', '--expires-days', '1'],
        env,
      );
      expect(run.code).toBe(0);
      const token = run.stdout.trim();
      const me = await request(http).get('/api/v1/me').set(bearer(token)).expect(200);
      expect(me.body.roles).toEqual(['user']);
      await request(http).get('/api/v1/admin/entitlement-rules').set(bearer(token)).expect(403);
    });

    it('gives SSO users tokens but never admin, which their next login would take away', async () => {
      const carol = bearer(
        await mintAccessToken(app, { sub: 'carol', exp: Math.floor(Date.now() / 1000) + 3600 }),
      );
      await request(http).get('/api/v1/me').set(carol).expect(200); // carol is known from now on
      const user = `${app.config.oidc.issuer}:carol`;
      const refused = await runCli(['token:create', '--user', user, '--admin'], env);
      expectOneLineError(refused);
      expect(refused.stderr).toMatch(/--admin is for local accounts/);
      const run = await runCli(['token:create', '--user', user], env);
      expect(run.code).toBe(0);
      const me = await request(http).get('/api/v1/me').set(bearer(run.stdout.trim())).expect(200);
      expect(me.body).toMatchObject({ subject: 'carol', roles: ['user'] });
    });

    it('refuses an unknown user, suggesting --create', async () => {
      const run = await runCli(['token:create', '--user', 'urn:labgate:local:nobody'], env);
      expectOneLineError(run);
      expect(run.stderr).toMatch(/there is no user urn:labgate:local:nobody: add --create/);
    });
  });

  describe('device:create, jobs:requeue and retention:run', () => {
    let device: { id: string; token: string };

    it('registers a device whose token the agent API accepts', async () => {
      const run = await runCli(
        [
          'device:create',
          '--name',
          'cli-box',
          '--kind',
          'workstation',
          '--runner',
          'agent',
          '--services',
          'echo',
          '--slots',
          '2',
          '--location',
          'Room 1',
          '--label',
          'room=1',
        ],
        env,
      );
      expect(run.code).toBe(0);
      expect(lines(run.stdout)).toEqual([expect.stringMatching(/^lgd_[\w-]+$/)]);
      const token = run.stdout.trim();
      await request(http).post('/api/v1/agent/heartbeat').set(bearer(token)).send({}).expect(200);
      const [row] = await sql<{ id: string; slots: number; labels: Record<string, string> }>(
        app.database.url,
        `select id, slots, labels from device where name = 'cli-box'`,
      );
      expect(row).toMatchObject({ slots: 2, labels: { room: '1' } });
      device = { id: row.id, token };
      expect(await audit('device.create')).toEqual([
        expect.objectContaining({
          actor_kind: 'system',
          details: expect.objectContaining({ name: 'cli-box' }),
        }),
      ]);
      const again = await runCli(
        [
          'device:create',
          '--name',
          'cli-box',
          '--kind',
          'gpu',
          '--runner',
          'agent',
          '--services',
          'echo',
        ],
        env,
      );
      expectOneLineError(again);
      expect(again.stderr).toMatch(/cli-box" exists already/);
    });

    it('puts an assigned job back in the queue through the lifecycle', async () => {
      const submitted = await request(http)
        .post('/api/v1/jobs')
        .set(alice)
        .send({ service: 'echo', inputs: { message: 'hi' }, targets: [device.id] })
        .expect(201);
      const id = submitted.body.jobs[0].id as string;
      // The agent never claims it: the job stays assigned to cli-box.
      await waitUntil('the job assigned', async () => {
        const job = await request(http).get(`/api/v1/jobs/${id}`).set(alice);
        return job.body.status === 'assigned' ? true : undefined;
      });

      const [tooYoung, otherService, dryRun] = await Promise.all([
        runCli(['jobs:requeue', '--state', 'assigned', '--older-than-minutes', '60'], env),
        runCli(['jobs:requeue', '--state', 'assigned', '--service', 'float-add'], env),
        runCli(['jobs:requeue', '--state', 'assigned', '--dry-run'], env),
      ]);
      expect(lines(tooYoung.stdout)).toEqual(['0 job(s) requeued']);
      expect(lines(otherService.stdout)).toEqual(['0 job(s) requeued']);
      expect(lines(dryRun.stdout)).toEqual([
        `would requeue ${id} echo (assigned on cli-box)`,
        '1 job(s) would be requeued',
      ]);
      const unchanged = await sql<{ n: number }>(
        app.database.url,
        `select count(*)::int as n from job_event where job_id = $1 and state = 'queued'`,
        [id],
      );
      expect(unchanged[0].n).toBe(1); // its submission only

      const run = await runCli(['jobs:requeue', '--state', 'assigned', '--service', 'echo'], env);
      expect(run.code).toBe(0);
      expect(lines(run.stdout)).toEqual([
        `requeued ${id} echo (was assigned on cli-box)`,
        '1 job(s) requeued',
      ]);
      const events = await sql<{ state: string; previous_state: string; actor: string }>(
        app.database.url,
        `select state, previous_state, actor from job_event where job_id = $1 order by at, id`,
        [id],
      );
      expect(events).toContainEqual({
        state: 'queued',
        previous_state: 'assigned',
        actor: 'system:cli',
      });
      expect(await audit('job.queued')).toContainEqual(
        expect.objectContaining({
          actor_kind: 'system',
          details: expect.objectContaining({ from: 'assigned', by: 'system:cli' }),
        }),
      );
      // Back in the queue, the scheduler places it again: a second placement.
      await waitUntil('the job placed again', async () => {
        const [job] = await sql<{ assignment: number; state: string }>(
          app.database.url,
          'select assignment, state from job where id = $1',
          [id],
        );
        return job.assignment >= 2 && job.state === 'assigned' ? job : undefined;
      });
    });

    it('takes a running job from the process running it and runs it again', async () => {
      const submitted = await request(http)
        .post('/api/v1/jobs')
        .set(alice)
        .send({ service: 'hold', inputs: {} })
        .expect(201);
      const id = submitted.body.id as string;
      // Each placement of the job runs in a work directory of its own (<job id>.<assignment>).
      const readPid = (assignment: number) => {
        const pidFile = join(app.varDir, 'work', `${id}.${assignment}`, 'outputs', 'pid');
        return existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
      };
      try {
        const first = await waitUntil('the job running its program', () => readPid(1) || undefined);

        const run = await runCli(['jobs:requeue', '--state', 'running', '--service', 'hold'], env);
        expect(run.code).toBe(0);
        expect(lines(run.stdout)).toEqual([
          `requeued ${id} hold (was running on local)`,
          '1 job(s) requeued',
        ]);
        // The CLI placed the job again and handed it to the device's Bull queue before exiting
        // (not left to a worker's reconciler, half a minute later).
        const [placed] = await sql<{ device_id: string; assignment: number }>(
          app.database.url,
          'select device_id, assignment from job where id = $1',
          [id],
        );
        expect(placed.assignment).toBe(2);
        const redis = new Redis(app.config.redis.url!);
        try {
          const key = `${app.config.redis.prefix}:device.${placed.device_id}:${id}:2`;
          expect(await redis.exists(key)).toBe(1);
        } finally {
          redis.disconnect();
        }
        // The worker ended the first attempt's program, then ran the second.
        await waitUntil('the first program ended', () => (isDead(first) ? true : undefined));
        const second = await waitUntil('a second attempt', () => {
          const pid = readPid(2);
          return pid && pid !== first ? pid : undefined;
        });
        const [job] = await sql<{ state: string; attempts: number }>(
          app.database.url,
          'select state, attempts from job where id = $1',
          [id],
        );
        expect(job).toEqual({ state: 'running', attempts: 2 });
        await request(http).post(`/api/v1/jobs/${id}/cancel`).set(alice).expect(200);
        await waitUntil('the second program ended', () => (isDead(second) ? true : undefined));
      } finally {
        // Whatever failed above, the local device must not stay busy for the next test.
        await request(http).post(`/api/v1/jobs/${id}/cancel`).set(alice);
      }
    });

    it('runs the retention pass now: files removed, job expired, listed', async () => {
      const submitted = await request(http)
        .post('/api/v1/jobs')
        .set(alice)
        .send({ service: 'float-add', inputs: { a: 1, b: 2 } })
        .expect(201);
      const id = submitted.body.id as string;
      const events = await followEvents(`${baseUrl(http)}/api/v1/jobs/${id}/events`, alice);
      expect(events.at(-1)?.data.state).toBe('succeeded');
      const files = join(app.config.storageDir, 'jobs', id);
      expect(existsSync(join(files, 'result.tar.gz'))).toBe(true);
      // float-add keeps files 7 days: this one finished 8 days ago.
      await sql(
        app.database.url,
        `update job set finished_at = now() - interval '8 days' where id = $1`,
        [id],
      );

      const run = await runCli(['retention:run'], env);
      expect(run.code).toBe(0);
      expect(lines(run.stdout)).toEqual([
        expect.stringMatching(
          new RegExp(`^expired ${id} float-add: files removed after the 7-day retention$`),
        ),
        '1 job(s) expired, their files removed',
      ]);
      expect(existsSync(files)).toBe(false);
      const job = await request(http).get(`/api/v1/jobs/${id}`).set(alice).expect(200);
      expect(job.body.status).toBe('expired');
      expect(await audit('job.expired')).toEqual([
        expect.objectContaining({ actor_kind: 'system' }),
      ]);

      const again = await runCli(['retention:run'], env);
      expect(lines(again.stdout)).toEqual(['nothing to expire']);
      // Each run by hand is audited, with what it did.
      expect(await audit('retention.run')).toEqual([
        expect.objectContaining({
          actor_kind: 'system',
          details: expect.objectContaining({ expired: 1 }),
        }),
        expect.objectContaining({
          actor_kind: 'system',
          details: expect.objectContaining({ expired: 0 }),
        }),
      ]);
    });
  });
});
