import {
  existsSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunSpec } from '../../catalog/manifest';
import { runLocal, type LocalRunOptions } from './local-runner';

const GRACE_MS = 300;

/** True once the process no longer runs: gone, or a zombie waiting for init to reap it. */
function isDead(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  try {
    // The field after "(comm)" is the state; Z = exited, not yet reaped (init here reaps lazily).
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/**
 * Whether the process is gone within `ms`. A killed process closes its pipes (what the runner
 * waits for) a moment before it is an exited task in /proc: asking once can race that moment.
 * Polled, because a process that is not our child gives no event when it ends.
 */
async function diesWithin(pid: number, ms = 2000): Promise<boolean> {
  for (const until = Date.now() + ms; !isDead(pid);) {
    if (Date.now() > until) {
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

/** Resolves with the first match of `pattern` in the log as it streams in. */
function waitForLog(pattern: RegExp): { onLog: (chunk: string) => void; seen: Promise<string[]> } {
  let text = '';
  let found: (match: string[]) => void;
  const seen = new Promise<string[]>((resolve) => (found = resolve));
  return {
    onLog: (chunk) => {
      text += chunk;
      const match = pattern.exec(text);
      if (match) {
        found([...match]);
      }
    },
    seen,
  };
}

describe(runLocal.name, () => {
  let workDir: string;
  let logFile: string;

  const spec = (command: string[], overrides: Partial<RunSpec> = {}): RunSpec => ({
    command,
    env: [],
    timeoutSeconds: 30,
    maxOutputBytes: 1_000_000,
    ...overrides,
  });
  const run = (options: Partial<LocalRunOptions> & { run: RunSpec }) =>
    runLocal({ serviceDir: '/srv/none', workDir, logFile, killGraceMs: GRACE_MS, ...options });
  const node = (script: string, ...args: string[]) => ['node', '-e', script, ...args];
  const logText = () => readFileSync(logFile, 'utf8');

  beforeEach(() => {
    workDir = mkdtempSync(join(tmpdir(), 'labgate-runner-'));
    logFile = join(workDir, 'job.log');
  });
  afterEach(() => rmSync(workDir, { recursive: true, force: true }));

  it('exits 0, keeps stdout and stderr in the log and reports progress lines, even split ones', async () => {
    // The child writes "PROG", then waits until the test has seen it before writing "RESS ...",
    // so the line really arrives in two chunks.
    const script = `
      const fs = require('fs');
      process.stdout.write('PROGRESS 10\\nhello\\nPROG');
      const t = setInterval(() => {
        if (!fs.existsSync('go')) return;
        clearInterval(t);
        process.stdout.write('RESS 55 half way there\\nPROGRESS abc\\nPROGRESS 150\\n');
        process.stderr.write('a warning\\n');
        process.stdout.write('PROGRESS -3 low\\nPROGRESS 99 nearly');
      }, 10);`;
    const progress: [number, string | undefined][] = [];
    const chunks: string[] = [];
    const result = await run({
      run: spec(node(script)),
      onProgress: (percent, message) => progress.push([percent, message]),
      onLog: (chunk) => {
        chunks.push(chunk);
        if (chunk.endsWith('PROG')) {
          writeFileSync(join(workDir, 'go'), '');
        }
      },
    });

    expect(result).toMatchObject({ outcome: 'exited', exitCode: 0, signal: null });
    expect(result.reason).toBeUndefined();
    expect(chunks.some((chunk) => chunk.endsWith('PROG'))).toBe(true);
    expect(progress).toEqual([
      [10, undefined],
      [55, 'half way there'],
      [100, undefined],
      [0, 'low'],
      [99, 'nearly'],
    ]);
    const log = logText();
    expect(log).toContain('PROGRESS 10\nhello\nPROGRESS 55 half way there\n');
    expect(log).toContain('a warning\n');
    expect(log).toContain('PROGRESS -3 low\nPROGRESS 99 nearly');
    expect(chunks.join('')).toBe(log);
    expect(result.logBytes).toBe(Buffer.byteLength(log));
    expect(result.logTruncated).toBe(false);
  });

  it('reports a non-zero exit code with a reason', async () => {
    const result = await run({ run: spec(node('console.error("bad input"); process.exit(3)')) });

    expect(result).toMatchObject({
      outcome: 'exited',
      exitCode: 3,
      signal: null,
      reason: 'exited with code 3',
    });
    expect(logText()).toBe('bad input\n');
  });

  it('reports a program killed by a signal it did not get from us', async () => {
    const result = await run({ run: spec(node('process.kill(process.pid, "SIGKILL")')) });

    expect(result).toMatchObject({
      outcome: 'exited',
      exitCode: null,
      signal: 'SIGKILL',
      reason: 'killed by SIGKILL',
    });
  });

  it('passes only whitelisted variables, PATH, HOME and LABGATE_WORK_DIR', async () => {
    const baseEnv = { PATH: process.env.PATH, HOME: '/home/lab', ALLOWED: 'yes', SECRET: 'no' };
    const result = await run({
      run: spec(node('process.stdout.write(JSON.stringify(process.env))'), {
        env: ['ALLOWED', 'NOT_SET_ANYWHERE'],
      }),
      baseEnv,
    });

    expect(result.exitCode).toBe(0);
    expect(JSON.parse(logText())).toEqual({
      PATH: process.env.PATH,
      HOME: '/home/lab',
      ALLOWED: 'yes',
      LABGATE_WORK_DIR: workDir,
    });
  });

  it('replaces {serviceDir} in every argv element and runs in the work dir', async () => {
    const serviceDir = mkdtempSync(join(tmpdir(), 'labgate-service-'));
    try {
      writeFileSync(
        join(serviceDir, 'tool.js'),
        'process.stdout.write(JSON.stringify({ argv: process.argv.slice(2), cwd: process.cwd() }))',
      );
      const result = await run({
        run: spec(['node', '{serviceDir}/tool.js', '--config={serviceDir}/c.yml', 'plain']),
        serviceDir,
      });

      expect(result.exitCode).toBe(0);
      expect(JSON.parse(logText())).toEqual({
        argv: [`--config=${serviceDir}/c.yml`, 'plain'],
        cwd: realpathSync(workDir),
      });
    } finally {
      rmSync(serviceDir, { recursive: true, force: true });
    }
  });

  it('passes argv elements literally, without a shell', async () => {
    const args = ['two words', `it's "quoted"`, 'a; touch y', '$(touch x)', '`touch z`', '*'];
    const result = await run({
      run: spec(node('process.stdout.write(JSON.stringify(process.argv.slice(1)))', ...args)),
    });

    expect(result.exitCode).toBe(0);
    expect(JSON.parse(logText())).toEqual(args);
    for (const name of ['x', 'y', 'z']) {
      expect(existsSync(join(workDir, name))).toBe(false);
    }
  });

  it('stops a program that runs past its timeout with SIGTERM to the group', async () => {
    const result = await run({ run: spec(['sleep', '1000'], { timeoutSeconds: 1 }) });

    expect(result).toMatchObject({
      outcome: 'timed-out',
      exitCode: null,
      signal: 'SIGTERM',
      reason: 'timed out after 1 s',
    });
    expect(result.durationMs).toBeGreaterThanOrEqual(1000);
    expect(result.durationMs).toBeLessThan(1000 + GRACE_MS + 2000);
  });

  it('cancels on abort, taking down the programs it started as well', async () => {
    const script = `
      const child = require('child_process').spawn('sleep', ['1000'], { stdio: 'ignore' });
      console.log('PIDS', process.pid, child.pid);
      setInterval(() => {}, 1000);`;
    const controller = new AbortController();
    const watch = waitForLog(/PIDS (\d+) (\d+)/);
    void watch.seen.then(() => controller.abort());

    const result = await run({ run: spec(node(script)), signal: controller.signal, ...watch });
    const [, parent, grandchild] = (await watch.seen).map(Number);

    expect(result).toMatchObject({ outcome: 'cancelled', signal: 'SIGTERM', reason: 'cancelled' });
    expect(await diesWithin(parent)).toBe(true);
    expect(await diesWithin(grandchild)).toBe(true);
  });

  it('kills the group with SIGKILL when the program ignores SIGTERM for the grace period', async () => {
    const script = `process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000);`;
    const controller = new AbortController();
    const watch = waitForLog(/ready/);
    void watch.seen.then(() => controller.abort());

    const result = await run({ run: spec(node(script)), signal: controller.signal, ...watch });

    expect(result).toMatchObject({ outcome: 'cancelled', exitCode: null, signal: 'SIGKILL' });
    expect(result.durationMs).toBeGreaterThanOrEqual(GRACE_MS);
  });

  it('does not start the program when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();

    const result = await run({ run: spec(['touch', 'started']), signal: controller.signal });

    expect(result).toMatchObject({ outcome: 'cancelled', exitCode: null, reason: 'cancelled' });
    expect(existsSync(join(workDir, 'started'))).toBe(false);
  });

  it('does not wait for leftovers that hold the pipes after the program exits', async () => {
    const script = `
      const child = require('child_process').spawn('sleep', ['1000'], { stdio: 'inherit' });
      child.unref();
      console.log('LEFTOVER', child.pid);`;
    const result = await run({ run: spec(node(script), { timeoutSeconds: 10 }) });
    const pid = Number(/LEFTOVER (\d+)/.exec(logText())?.[1]);

    expect(result).toMatchObject({ outcome: 'exited', exitCode: 0 });
    expect(result.durationMs).toBeLessThan(5000);
    expect(await diesWithin(pid)).toBe(true);
  });

  it('caps the log with a marker line and keeps draining until the program completes', async () => {
    const line = (i: number) => `${String(i).padStart(1023, '.')}\n`;
    const script = `
      for (let i = 0; i < 5 * 1024; i++) process.stdout.write(String(i).padStart(1023, '.') + '\\n');
      process.stderr.write('finished\\n');`;
    const chunks: string[] = [];
    const result = await run({
      run: spec(node(script), { maxOutputBytes: 10_240 }),
      onLog: (chunk) => chunks.push(chunk),
    });

    const expected =
      Array.from({ length: 10 }, (_, i) => line(i)).join('') +
      '\n[labgate: log truncated at 10240 bytes]\n';
    expect(result).toMatchObject({ outcome: 'exited', exitCode: 0, logTruncated: true });
    expect(logText()).toBe(expected);
    expect(result.logBytes).toBe(Buffer.byteLength(expected));
    expect(chunks.join('')).toBe(expected);
  });

  it('reports a missing binary as spawn-failed instead of throwing', async () => {
    const result = await run({ run: spec(['labgate-no-such-binary', '--help']) });

    expect(result).toMatchObject({
      outcome: 'spawn-failed',
      exitCode: null,
      signal: null,
      reason: 'spawn failed: ENOENT labgate-no-such-binary',
      logBytes: 0,
    });
    expect(logText()).toBe('');
  });

  it('reports an empty command as spawn-failed', async () => {
    const result = await run({ run: spec([]) });

    expect(result).toMatchObject({
      outcome: 'spawn-failed',
      reason: 'spawn failed: empty command',
    });
  });
});
