import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Client } from 'pg';
import { PG_ADMIN_URL, TEST_REDIS_URL } from '../../test/support/services';

/** One figure of a bench, with the baseline it is compared to (measured in the same run). */
export interface Measure {
  measure: string;
  figure: string;
  baseline?: string;
  ratio?: string;
  target?: string;
  /** Undefined: no target for this figure (informational). */
  met?: boolean;
}

export interface BenchReport {
  /** File name without `.ts`. */
  bench: string;
  title: string;
  /** The sizes the run used, as `name=value`. */
  params: string[];
  measures: Measure[];
  /** Breakdowns and observations worth keeping with the figures. */
  notes: string[];
  /** Raw numbers, for whoever wants to compare runs by script. */
  values: Record<string, number>;
}

export interface MachineFacts {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  node: string;
  postgres: string;
  redis: string;
  commit: string;
  /** 1-minute load average when the facts were taken: the machine is shared. */
  load: number;
}

const ROOT = join(__dirname, '..', '..');

export async function machineFacts(): Promise<MachineFacts> {
  let postgres = '?';
  const pg = new Client({ connectionString: PG_ADMIN_URL });
  try {
    await pg.connect();
    const { rows } = await pg.query<{ server_version: string }>('SHOW server_version');
    postgres = rows[0].server_version.split(' ')[0];
  } catch {
    // reported as '?'
  } finally {
    await pg.end().catch(() => {});
  }
  let redis = '?';
  const client = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    redis = /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? '?';
  } catch {
    // reported as '?'
  } finally {
    client.disconnect();
  }
  let commit = '?';
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
    commit = git('rev-parse', '--short', 'HEAD');
    if (git('status', '--porcelain', '--untracked-files=no') !== '') {
      commit += ' + uncommitted changes';
    }
  } catch {
    // reported as '?'
  }
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? '?',
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres,
    redis,
    commit,
    load: os.loadavg()[0],
  };
}

export function describeMachine(m: MachineFacts): string {
  return (
    `${m.cpus} CPUs (nproc; ${m.cpuModel}), ${m.memoryGiB} GiB RAM, ${m.os}, Node ${m.node}, ` +
    `PostgreSQL ${m.postgres}, Redis ${m.redis}, commit ${m.commit}, load ${m.load.toFixed(2)} at start`
  );
}

/** The block a bench prints for people: every figure with its baseline, ratio and target. */
export function formatReport(report: BenchReport, machine: MachineFacts): string {
  const lines = [
    '',
    `=== ${report.title} (bench/${report.bench}.ts)`,
    `machine: ${describeMachine(machine)}`,
    `params:  ${report.params.join(', ')}`,
  ];
  for (const m of report.measures) {
    lines.push('', `--- ${m.measure}`, `  figure:   ${m.figure}`);
    if (m.baseline) {
      lines.push(`  baseline: ${m.baseline}`);
    }
    if (m.ratio) {
      lines.push(`  ratio:    ${m.ratio}`);
    }
    if (m.target) {
      lines.push(`  target:   ${m.target} -> met: ${m.met ? 'yes' : 'NO'}`);
    }
  }
  if (report.notes.length > 0) {
    lines.push('', 'notes:', ...report.notes.map((n) => `  - ${n}`));
  }
  return lines.join('\n');
}

/** Set by bench/run.ts: where a bench leaves its report as JSON. */
export const REPORT_FILE_ENV = 'BENCH_REPORT_FILE';

export function saveReport(report: BenchReport): void {
  const file = process.env[REPORT_FILE_ENV];
  if (file) {
    writeFileSync(file, JSON.stringify(report, null, 2));
  }
}

/** Runs a bench's main: exit status 0 when it resolves, else 1 with the error's stack. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exit(1);
    },
  );
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) {
    return NaN;
  }
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

export function fixed(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : String(n);
}

export function percent(ratio: number): string {
  return `${fixed(ratio * 100, ratio < 0.1 ? 2 : 1)}%`;
}
