import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Client } from 'pg';
import type { AppConfig, Environment } from '../../src/config';
import { TEST_REDIS_URL } from './services';

/** The key of the test-only service `addSlowFinishService` declares. */
export const SLOW_FINISH = 'slow-finish';

/**
 * Adds `slow-finish` to a SERVICES_DIR: it reports `PROGRESS 10`, sleeps `seconds`, then writes
 * `outputs/done.txt` and metrics `{"pid": <its pid>}`. Two attempts, so that a worker lost once
 * still leaves the job one to finish with.
 */
export function addSlowFinishService(servicesDir: string): void {
  const script = [
    "const fs = require('fs');",
    "const { seconds } = JSON.parse(fs.readFileSync('inputs.json', 'utf8'));",
    "console.log('PROGRESS 10 working');",
    'setTimeout(() => {',
    "  fs.writeFileSync('outputs/done.txt', 'done');",
    "  fs.writeFileSync('outputs/metrics.json', JSON.stringify({ pid: process.pid }));",
    '}, seconds * 1000);',
  ].join(' ');
  writeFileSync(
    join(servicesDir, `${SLOW_FINISH}.yaml`),
    `key: ${SLOW_FINISH}
title: Slow finish
description: Works for a while, then writes its outputs; for worker-loss tests.
version: 1.0.0
inputs:
  - name: seconds
    type: int
    min: 1
    max: 60
run:
  command: [node, -e, ${JSON.stringify(script)}]
  timeoutSeconds: 60
retry:
  attempts: 2
  backoffSeconds: 1
retentionDays: 1
`,
  );
}

/**
 * The environment a worker child process needs to join an in-process test app: the same
 * database, Redis prefix, directories and identity provider (AuthModule loads in every role).
 */
export function workerEnvironment(config: AppConfig, extra: Environment = {}): Environment {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    DATABASE_URL: config.database.url,
    REDIS_URL: config.redis.url,
    REDIS_PREFIX: config.redis.prefix,
    VAR_DIR: config.varDir,
    STORAGE_DIR: config.storageDir,
    SERVICES_DIR: config.servicesDir,
    OIDC_ISSUER: config.oidc.issuer,
    OIDC_CLIENT_SECRET: config.oidc.clientSecret,
    OIDC_CLIENT_ID: config.oidc.clientId,
    OIDC_AUDIENCE: config.oidc.audience,
    WORKER_CONCURRENCY: String(config.workerConcurrency),
    ...extra,
  };
}

/**
 * Polls `probe` every `intervalMs` until it returns something other than undefined/false;
 * fails after `timeoutMs` naming `what` and the last value seen.
 */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  { timeoutMs = 15_000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

async function withPg<T>(databaseUrl: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export interface JobEventRow {
  state: string;
  previousState: string | null;
  reason: string | null;
  actor: string;
  at: Date;
}

/** A job's event rows (the outbox) in the order they were written. */
export function jobEventRows(databaseUrl: string, jobId: string): Promise<JobEventRow[]> {
  return withPg(databaseUrl, async (client) => {
    const { rows } = await client.query<JobEventRow>(
      `select state, previous_state as "previousState", reason, actor, at
         from job_event where job_id = $1 order by id`,
      [jobId],
    );
    return rows;
  });
}

/** Moves every job's `updated_at` back by `seconds`, as if that much time had passed. */
export function ageJobs(databaseUrl: string, seconds: number): Promise<number> {
  return withPg(databaseUrl, async (client) => {
    const { rowCount } = await client.query(
      `update job set updated_at = updated_at - $1::int * interval '1 second'`,
      [seconds],
    );
    return rowCount ?? 0;
  });
}

/** How many Redis keys live under a prefix. */
export async function countRedisKeys(prefix: string, url = TEST_REDIS_URL): Promise<number> {
  const redis = new Redis(url);
  try {
    let cursor = '0';
    let count = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      count += keys.length;
    } while (cursor !== '0');
    return count;
  } finally {
    redis.disconnect();
  }
}

/**
 * Registers the workers' `local` device as if a worker were up (a fresh heartbeat), so that
 * an API-only app places jobs on it before any worker runs. Returns its id.
 */
export function addLiveLocalDevice(databaseUrl: string, slots = 1): Promise<string> {
  return withPg(databaseUrl, async (client) => {
    const { rows } = await client.query<{ id: string }>(
      `insert into device (id, name, kind, runner, services, slots, labels, admin_state,
                           token_hash, token_hint, active_jobs, last_heartbeat_at, created_at,
                           updated_at)
       values (gen_random_uuid(), 'local', 'workstation', 'local', '["*"]', $1, '{}', 'enabled',
               md5(random()::text), 'lgd_', 0, now(), now(), now())
       returning id`,
      [slots],
    );
    return rows[0].id;
  });
}
