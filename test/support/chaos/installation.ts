import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { startDevelopmentProvider } from '../../../src/bootstrap';
import { AppConfig, Environment, loadConfig } from '../../../src/config';
import { bearer, mintAccessToken } from '../auth';
import { createTestDatabase, TestDatabase } from '../database';
import { freePort, LabgateProcess } from '../labgate-process';
import { waitUntil } from '../recovery';
import { clearRedisPrefix } from '../redis';
import { TEST_REDIS_URL } from '../services';
import { testServicesDir } from '../services.fixture';
import type { TestEnvironment } from '../test-app';
import type { PrivatePostgres } from './private-postgres';
import type { PrivateRedis } from './private-redis';

/** An API process and where it listens. */
export interface ApiProcess {
  proc: LabgateProcess;
  port: number;
  url: string;
}

export interface InstallationOptions {
  /** A Redis of the test's own (to restart or flush); else the shared one, under a prefix. */
  redis?: PrivateRedis;
  /** A PostgreSQL of the test's own (to stop and start); else a database on the shared one. */
  postgres?: PrivatePostgres;
  /** Further variables for every process. */
  env?: Environment;
  /** Adds test services to the SERVICES_DIR (which holds the shipped ones and the fixtures'). */
  services?: (servicesDir: string) => void;
}

/**
 * One labgate installation made of real processes on this machine, as production runs it:
 * API processes (`ROLE=api`) and workers started as children, all on one database, one Redis
 * prefix, one storage dir and one identity provider (in the test process, for minting tokens).
 */
export class Installation {
  readonly processes: LabgateProcess[] = [];
  private readonly disposers: Array<() => Promise<void>> = [];

  private constructor(
    readonly databaseUrl: string,
    readonly redisUrl: string,
    readonly prefix: string,
    readonly varDir: string,
    readonly servicesDir: string,
    private readonly identity: Pick<TestEnvironment, 'config' | 'idp'>,
    private readonly baseEnv: Environment,
  ) {}

  static async create(options: InstallationOptions = {}): Promise<Installation> {
    const varDir = mkdtempSync(join(tmpdir(), 'labgate-chaos-'));
    const prefix = `lgchaos-${randomBytes(4).toString('hex')}`;
    let database: TestDatabase | undefined;
    const databaseUrl = options.postgres
      ? await options.postgres.createDatabase('labgate')
      : (database = await createTestDatabase()).url;
    const redisUrl = options.redis?.url ?? TEST_REDIS_URL;
    const servicesDir = testServicesDir();
    options.services?.(servicesDir);
    const env: Environment = {
      NODE_ENV: 'test',
      // Warnings and errors only: what goes wrong is in the output, 200 requests' lines are not.
      LOG_LEVEL: 'warn',
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      VAR_DIR: varDir,
      SERVICES_DIR: servicesDir,
      SHUTDOWN_TIMEOUT_SECONDS: '5',
      // Rate limits on (their Redis counters are part of what must survive), never reached.
      RATE_LIMIT_USER_PER_MINUTE: '100000',
      RATE_LIMIT_IP_PER_MINUTE: '100000',
      DEV_IDP_PORT: '0',
      ...options.env,
    };
    const idp = await startDevelopmentProvider(loadConfig(env));
    const oidc: Environment = { OIDC_ISSUER: idp.issuer, OIDC_CLIENT_SECRET: idp.clientSecret };
    const config: AppConfig = loadConfig({ ...env, ...oidc });
    const installation = new Installation(
      databaseUrl,
      redisUrl,
      prefix,
      varDir,
      servicesDir,
      { config, idp },
      { ...env, ...oidc },
    );
    installation.disposers.push(
      () => idp.stop(),
      async () => {
        await database?.drop();
        if (!options.redis) {
          await clearRedisPrefix(prefix);
        }
        rmSync(varDir, { recursive: true, force: true });
        rmSync(servicesDir, { recursive: true, force: true });
      },
    );
    return installation;
  }

  get storageDir(): string {
    return join(this.varDir, 'storage');
  }

  /** Starts an API process and waits until it listens. */
  async startApi(extra: Environment = {}): Promise<ApiProcess> {
    const port = await freePort();
    const proc = this.spawn('main', { ROLE: 'api', PORT: String(port), ...extra });
    await proc.waitFor(/listening on http/, 90_000);
    return { proc, port, url: `http://127.0.0.1:${port}` };
  }

  /** Starts a worker process and waits until it runs. */
  async startWorker(extra: Environment = {}): Promise<LabgateProcess> {
    const proc = this.spawn('worker', extra);
    await proc.waitFor(/worker started/, 90_000);
    return proc;
  }

  private spawn(entry: 'main' | 'worker', extra: Environment): LabgateProcess {
    const proc = new LabgateProcess(entry, { ...this.baseEnv, ...extra });
    this.processes.push(proc);
    return proc;
  }

  /**
   * Bearer headers of a user (`sub`), valid for an hour; `entitlements` replace the demo
   * user's (e.g. one of ADMIN_ENTITLEMENTS, for an admin).
   */
  async user(sub = 'alice', entitlements?: string[]): Promise<Record<string, string>> {
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const token = await mintAccessToken(this.identity as TestEnvironment, {
      sub,
      exp,
      email: `${sub}@labgate.test`,
      ...(entitlements ? { [this.identity.config.auth.entitlementClaim]: entitlements } : {}),
    });
    return bearer(token);
  }

  /** One query against the installation's database (a connection of its own, closed after). */
  async query<T extends object>(text: string, params: unknown[] = []): Promise<T[]> {
    const client = new Client({ connectionString: this.databaseUrl });
    client.on('error', () => {});
    await client.connect();
    try {
      return (await client.query<T>(text, params)).rows;
    } finally {
      await client.end();
    }
  }

  /**
   * Waits until every job is final and every succeeded job has its result (the workers'
   * results feed makes them, copying archives): the state the invariants are checked in.
   */
  async settle(timeoutMs = 60_000): Promise<void> {
    await waitUntil(
      'every job to end and every result to be made',
      async () => {
        const [row] = await this.query<{ live: number; pending: number }>(
          `select (select count(*)::int from job
                    where state not in ('succeeded', 'failed', 'cancelled', 'expired')) as live,
                  (select count(*)::int from job j
                    where j.state = 'succeeded'
                      and not exists (select 1 from result r where r.job_id = j.id)) as pending`,
        );
        return row.live === 0 && row.pending === 0;
      },
      { timeoutMs, intervalMs: 200 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.outputs()}`);
    });
  }

  /** Fails (with its output) if any process has exited: recovery must need no restart. */
  expectAllAlive(): void {
    for (const proc of this.processes) {
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
        throw new Error(
          `process ${proc.child.pid} exited (${proc.child.exitCode ?? proc.child.signalCode}):\n` +
            proc.output.slice(-20_000),
        );
      }
    }
  }

  /** The output of every process so far, for a failure message. */
  outputs(): string {
    return this.processes
      .map((p) => `--- pid ${p.child.pid} ---\n${p.output.slice(-20_000)}`)
      .join('\n');
  }

  /** Stops every process (SIGTERM, then SIGKILL after a grace), then removes what it made. */
  async dispose(): Promise<void> {
    await Promise.all(
      this.processes.map(async (proc) => {
        const timer = setTimeout(() => proc.child.kill('SIGKILL'), 8_000);
        await proc.stop();
        clearTimeout(timer);
      }),
    );
    for (const dispose of this.disposers) {
      await dispose().catch(() => undefined);
    }
  }
}

/** JSON over fetch, for talking to child processes (no supertest: they are real servers). */
export async function call(
  api: ApiProcess,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
  timeoutMs = 15_000,
): Promise<{ status: number; type: string; body: Record<string, unknown> }> {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    parsed = { text };
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: parsed };
}

/** Submits a JSON job; fails the test unless it is accepted (201). Returns the job id. */
export async function submit(
  api: ApiProcess,
  headers: Record<string, string>,
  service: string,
  inputs: Record<string, unknown>,
): Promise<string> {
  const res = await call(api, 'POST', '/api/v1/jobs', headers, { service, inputs });
  if (res.status !== 201) {
    throw new Error(`POST /api/v1/jobs: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body.id as string;
}

/** `work`, or a rejection naming `what` once `ms` have passed (a stream that never ends, say). */
export async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
