/**
 * HTTP benchmark (issue "Evidence"): requests/s and p99 of
 *   - GET /api/v1/jobs/:id with a job ticket (X-Job-Token), the poll a TOMAAT-style client makes,
 *   - GET /health/live,
 * against a bare NestJS app with one route on the same adapter (bench/lib/bare-nest.ts), the
 * framework's own ceiling. Target: ticket status ≥ 40% of the bare app's requests/s.
 *
 * The API runs as its own process (ROLE=api, LOG_LEVEL=warn as in production minus info
 * lines); the job was run to `succeeded` by a worker process that is stopped before the load
 * starts. The load client (autocannon, in this process) shares the 2 CPUs with the server for
 * every target alike. Targets are measured in interleaved rounds (bare, health, ticket, bare,
 * …) and the median round is reported, so that a burst of noise on the machine does not land
 * on one target only.
 *
 *   npm run bench -- --only http
 */
import 'reflect-metadata';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { bearer, mintAccessToken } from '../test/support/auth';
import { ensureServices } from '../test/support/services';
import { createTestEnvironment } from '../test/support/test-app';
import { WatchedProcess } from '../test/support/watched-process';
import { compiledRoot, startApiProcess, startWorkerProcess } from './lib/api-process';
import { Cleanup, sleep } from './lib/cleanup';
import { parseFlags } from './lib/cli';
import { postJson } from './lib/http';
import {
  BenchReport,
  describeMachine,
  fixed,
  formatReport,
  machineFacts,
  percent,
  saveReport,
  runBench,
} from './lib/report';

const ROUNDS = 3;
const ROUND_SECONDS = 6;
const WARMUP_SECONDS = 3;
const CONNECTIONS = 32;
const TARGET_RATIO = 0.4;

const log = (line: string) => console.log(`[http] ${line}`);

interface Round {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  rounds: Round[];
}

async function load(target: Target, seconds: number): Promise<Round> {
  const result = await autocannon({
    url: target.url,
    headers: target.headers,
    connections: CONNECTIONS,
    duration: seconds,
  });
  return {
    rps: result.requests.total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];

function summary(target: Target): Round {
  return {
    rps: median(target.rounds.map((r) => r.rps)),
    p50: median(target.rounds.map((r) => r.p50)),
    p99: median(target.rounds.map((r) => r.p99)),
    non2xx: target.rounds.reduce((n, r) => n + r.non2xx, 0),
    errors: target.rounds.reduce((n, r) => n + r.errors, 0),
  };
}

async function startBareApp(cleanup: Cleanup): Promise<string> {
  const bare = new WatchedProcess(
    join(await compiledRoot(cleanup), 'bench', 'lib', 'bare-nest.js'),
    [],
    { PORT: '0' },
  );
  cleanup.add('bare NestJS app', () => bare.stop());
  const [, port] = await bare.waitFor(/listening (\d+)/);
  return `http://127.0.0.1:${port}`;
}

/** An echo job run to `succeeded` by a worker process that is then stopped; its ticket. */
async function finishedJob(
  url: string,
  env: Awaited<ReturnType<typeof createTestEnvironment>>,
  servicesDir: string,
  cleanup: Cleanup,
): Promise<{ id: string; token: string }> {
  const auth = bearer(
    await mintAccessToken(env, { sub: 'bench', exp: Math.floor(Date.now() / 1000) + 3600 }),
  );
  const job = await postJson<{ id: string; token: string }>(
    `${url}/api/v1/jobs`,
    { service: 'echo', inputs: { message: 'bench' } },
    auth,
  );
  const { worker, stop } = await startWorkerProcess(env, servicesDir, cleanup);
  for (const until = Date.now() + 120_000; ;) {
    const res = await fetch(`${url}/api/v1/jobs/${job.id}`, {
      headers: { 'X-Job-Token': job.token },
    });
    const body = (await res.json()) as { status: string; reason?: string };
    if (body.status === 'succeeded') {
      break;
    }
    if (['failed', 'cancelled'].includes(body.status) || Date.now() > until) {
      throw new Error(`the echo job did not succeed: ${JSON.stringify(body)}\n${worker.output}`);
    }
    cleanup.check();
    await sleep(200);
  }
  await stop();
  return job;
}

async function main() {
  parseFlags(process.argv.slice(2)); // accepts run.ts's flags; none applies here
  const cleanup = new Cleanup();
  const report: BenchReport = {
    bench: 'http',
    title: 'HTTP: ticket status and liveness against a bare NestJS app',
    params: [
      `connections=${CONNECTIONS}`,
      `rounds=${ROUNDS}x${ROUND_SECONDS}s per target, interleaved, median reported`,
      `warm-up=${WARMUP_SECONDS}s per target`,
    ],
    measures: [],
    notes: [],
    values: {},
  };
  try {
    await ensureServices();
    const machine = await machineFacts();
    log(`machine: ${describeMachine(machine)}`);
    const servicesDir = mkdtempSync(join(tmpdir(), 'labgate-bench-services-'));
    cleanup.add('services dir', () => rmSync(servicesDir, { recursive: true, force: true }));
    cpSync(join(__dirname, '..', 'services'), servicesDir, { recursive: true });
    const env = await createTestEnvironment({}, { emptyDatabase: true });
    cleanup.add('bench environment', () => env.dispose());
    const { url } = await startApiProcess(env, servicesDir, cleanup);
    const job = await finishedJob(url, env, servicesDir, cleanup);
    const bareUrl = await startBareApp(cleanup);

    const targets: Target[] = [
      { name: 'bare NestJS app, one route', url: `${bareUrl}/status`, headers: {}, rounds: [] },
      { name: 'GET /health/live', url: `${url}/health/live`, headers: {}, rounds: [] },
      {
        name: 'GET /api/v1/jobs/:id with a ticket',
        url: `${url}/api/v1/jobs/${job.id}`,
        headers: { 'X-Job-Token': job.token },
        rounds: [],
      },
    ];
    for (const target of targets) {
      cleanup.check();
      const warm = await load(target, WARMUP_SECONDS);
      if (warm.non2xx > 0 || warm.errors > 0) {
        throw new Error(`${target.name}: ${warm.non2xx} non-2xx, ${warm.errors} errors`);
      }
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const target of targets) {
        cleanup.check();
        const r = await load(target, ROUND_SECONDS);
        target.rounds.push(r);
        log(`round ${round + 1} ${target.name}: ${fixed(r.rps)} req/s, p99 ${r.p99} ms`);
      }
    }

    const [bare, health, ticket] = targets.map(summary);
    for (const [name, s] of [
      ['bare', bare],
      ['health', health],
      ['ticket', ticket],
    ] as const) {
      report.values[`${name}Rps`] = s.rps;
      report.values[`${name}P99Ms`] = s.p99;
      if (s.non2xx > 0 || s.errors > 0) {
        throw new Error(`${name}: ${s.non2xx} non-2xx answers, ${s.errors} errors under load`);
      }
    }
    const baseline = `bare NestJS app, one route: ${fixed(bare.rps)} req/s, p99 ${bare.p99} ms`;
    report.measures.push(
      {
        measure: `HTTP: GET /api/v1/jobs/:id with a ticket (${CONNECTIONS} connections)`,
        figure: `${fixed(ticket.rps)} req/s, p50 ${ticket.p50} ms, p99 ${ticket.p99} ms`,
        baseline,
        ratio: percent(ticket.rps / bare.rps),
        target: `≥ ${percent(TARGET_RATIO)} of the bare app's requests/s`,
        met: ticket.rps / bare.rps >= TARGET_RATIO,
      },
      {
        measure: `HTTP: GET /health/live (${CONNECTIONS} connections)`,
        figure: `${fixed(health.rps)} req/s, p50 ${health.p50} ms, p99 ${health.p99} ms`,
        baseline,
        ratio: percent(health.rps / bare.rps),
      },
    );
    report.notes.push(
      `rounds (req/s): ${targets
        .map((t) => `${t.name}: ${t.rounds.map((r) => fixed(r.rps, 0)).join(' / ')}`)
        .join('; ')}`,
      'the load client (autocannon) runs in the bench process on the same 2 CPUs as the server',
    );
    console.log(formatReport(report, machine));
    saveReport(report);
  } finally {
    await cleanup.run();
  }
}

runBench(main);
