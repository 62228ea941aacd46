/**
 * `npm run bench [-- flags]`: runs every bench in bench/ (each `bench/<name>.ts`; helpers live
 * in bench/lib/) one after the other, each in a process of its own, prints their figures and
 * prepends them to bench/RESULTS.md with the machine, date and command (newest first).
 *
 * Every bench gets the whole command line (see bench/lib/cli.ts for the flags) and leaves its
 * report as JSON in the file named by BENCH_REPORT_FILE. Quick run:
 *
 *   npm run bench -- --jobs 50 --upload-mb 100
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { compileCheckout } from '../test/support/compiled';
import { ensureServices } from '../test/support/services';
import { BENCH_PROGRAMS, COMPILED_ROOT_ENV } from './lib/api-process';
import { parseFlags } from './lib/cli';
import {
  BenchReport,
  describeMachine,
  formatReport,
  MachineFacts,
  machineFacts,
  REPORT_FILE_ENV,
} from './lib/report';

const BENCH_DIR = __dirname;
const ROOT = join(BENCH_DIR, '..');
const RESULTS = join(BENCH_DIR, 'RESULTS.md');
const RESULTS_HEADER = `# Benchmark results

Written by \`npm run bench\` (bench/run.ts), newest first. Each figure is compared with a
baseline measured in the same run on the same machine; the ratio is what a target speaks of.
Timed tests are not used for speed (the machines are noisy).
`;

interface Outcome {
  bench: string;
  seconds: number;
  report?: BenchReport;
  error?: string;
}

function benches(): string[] {
  return readdirSync(BENCH_DIR)
    .filter((f) => /^[a-z0-9][\w-]*\.ts$/.test(f) && f !== 'run.ts')
    .map((f) => f.slice(0, -3))
    .sort();
}

let current: ReturnType<typeof spawn> | undefined;
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // Ctrl-C reaches the bench too (same process group); a SIGTERM is passed on. The bench
  // cleans up and exits, then so does this process.
  process.on(signal, () => {
    if (!current) {
      process.exit(130);
    }
    current.kill(signal);
    interrupted = true;
  });
}

async function runBench(bench: string, args: string[], reportFile: string): Promise<Outcome> {
  rmSync(reportFile, { force: true });
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', join(BENCH_DIR, `${bench}.ts`), ...args],
    { cwd: ROOT, stdio: 'inherit', env: { ...process.env, [REPORT_FILE_ENV]: reportFile } },
  );
  current = child;
  const { code, signal } = await new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
  }>((resolve) => child.once('exit', (c, s) => resolve({ code: c, signal: s })));
  current = undefined;
  const seconds = (performance.now() - t0) / 1000;
  if (code === 0 && existsSync(reportFile)) {
    return { bench, seconds, report: JSON.parse(readFileSync(reportFile, 'utf8')) as BenchReport };
  }
  return { bench, seconds, error: `exited with ${signal ?? `code ${code}`}` };
}

function cell(text: string | undefined): string {
  return (text ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function entry(outcomes: Outcome[], machine: MachineFacts, command: string): string {
  const date = new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/:\d\d\.\d+Z$/, ' UTC');
  const lines = [`## ${date} · \`${command}\``, '', `Machine: ${describeMachine(machine)}.`];
  for (const o of outcomes) {
    lines.push('');
    if (!o.report) {
      lines.push(`### bench/${o.bench}.ts: FAILED (${o.error}) after ${o.seconds.toFixed(0)} s`);
      continue;
    }
    const r = o.report;
    lines.push(
      `### ${r.title} (bench/${r.bench}.ts, ${o.seconds.toFixed(0)} s)`,
      '',
      `Parameters: ${r.params.join(', ')}.`,
      '',
      '| Measure | Figure | Baseline (same run) | Ratio | Target | Met |',
      '|---|---|---|---|---|---|',
      ...r.measures.map(
        (m) =>
          `| ${cell(m.measure)} | ${cell(m.figure)} | ${cell(m.baseline)} | ${cell(m.ratio)} | ` +
          `${cell(m.target)} | ${m.met === undefined ? '' : m.met ? 'yes' : '**no**'} |`,
      ),
    );
    if (r.notes.length > 0) {
      lines.push('', ...r.notes.map((n) => `- ${n}`));
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Puts the new entry first, under the file's header (created when missing). */
function record(text: string): void {
  const old = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : RESULTS_HEADER;
  const first = old.search(/^## /m);
  const head = first < 0 ? old : old.slice(0, first);
  const rest = first < 0 ? '' : old.slice(first);
  writeFileSync(RESULTS, `${head.trimEnd()}\n\n${text}${rest ? `\n${rest}` : ''}`);
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const flags = parseFlags(args);
  const all = benches();
  const unknown = flags.only.filter((b) => !all.includes(b));
  if (unknown.length > 0) {
    throw new Error(`no such bench: ${unknown.join(', ')} (there are: ${all.join(', ')})`);
  }
  const selected = flags.only.length > 0 ? all.filter((b) => flags.only.includes(b)) : all;
  await ensureServices();
  const machine = await machineFacts();
  console.log(`bench: ${selected.join(', ')} on ${describeMachine(machine)}`);

  const dir = mkdtempSync(join(tmpdir(), 'labgate-bench-run-'));
  const outcomes: Outcome[] = [];
  // One compiled checkout for every bench: their processes run as production runs dist/.
  console.log('compiling the checkout for the benches (tsconfig.build.json)');
  const compiled = await compileCheckout(BENCH_PROGRAMS);
  process.env[COMPILED_ROOT_ENV] = compiled.root;
  try {
    for (const bench of selected) {
      if (interrupted) {
        break;
      }
      console.log(`\n##### bench/${bench}.ts`);
      outcomes.push(await runBench(bench, args, join(dir, `${bench}.json`)));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    compiled.remove();
  }

  console.log('\n##### summary');
  for (const o of outcomes) {
    console.log(
      o.report ? formatReport(o.report, machine) : `\n=== bench/${o.bench}.ts FAILED: ${o.error}`,
    );
  }
  const command =
    process.env.npm_lifecycle_event === 'bench'
      ? `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`
      : `npx ts-node --transpile-only bench/run.ts${args.length ? ` ${args.join(' ')}` : ''}`;
  if (interrupted) {
    console.log('\ninterrupted: bench/RESULTS.md left as it was');
  } else if (flags.noRecord) {
    console.log('\n--no-record: bench/RESULTS.md left as it was');
  } else {
    record(entry(outcomes, machine, command));
    console.log(`\nrecorded in bench/RESULTS.md (${command})`);
  }
  return outcomes.every((o) => o.report) && !interrupted ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
