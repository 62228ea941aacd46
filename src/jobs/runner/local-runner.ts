import { spawn, type ChildProcess } from 'node:child_process';
import type { RunSpec } from '../../catalog/manifest';
import { CappedLog } from './capped-log';
import { ProgressLines } from './progress-lines';

export interface LocalRunOptions {
  /** argv, env whitelist, timeout and log cap, as the service manifest declares them. */
  run: RunSpec;
  /** Replaces `{serviceDir}` in any argv element. */
  serviceDir: string;
  /** The program's cwd; already holds inputs.json, inputs/ and outputs/. */
  workDir: string;
  /** Absolute path; stdout and stderr interleaved as they arrive, capped at run.maxOutputBytes. */
  logFile: string;
  /** Abort = cancel: the whole process group is stopped. */
  signal?: AbortSignal;
  /** From stdout lines `PROGRESS 42` or `PROGRESS 42 some message`; percent clamped to 0..100. */
  onProgress?: (percent: number, message?: string) => void;
  /** Each chunk written to the log (for live tails), the truncation marker included. */
  onLog?: (chunk: string) => void;
  /** The program's pid (also its process group id), as soon as it runs. */
  onSpawn?: (pid: number) => void;
  /** Where whitelisted values come from (default process.env). */
  baseEnv?: NodeJS.ProcessEnv;
  /** Time between SIGTERM and SIGKILL to the group on timeout or cancel (default 5000). */
  killGraceMs?: number;
}

export interface LocalRunResult {
  outcome: 'exited' | 'timed-out' | 'cancelled' | 'spawn-failed';
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  durationMs: number;
  /** Bytes in logFile, the truncation marker included. */
  logBytes: number;
  logTruncated: boolean;
  /** Human text for failures; absent when the program exited with code 0. */
  reason?: string;
}

/**
 * PATH and HOME are always passed (from baseEnv) besides the manifest's whitelist: without PATH
 * an argv[0] like `node` cannot resolve, and many runtimes misbehave without HOME.
 */
const ALWAYS_PASSED = ['PATH', 'HOME'];

/**
 * Runs a service's command as a local process: argv only (never a shell), whitelisted env, in
 * its own process group so that timeout and cancel take down everything it started. Never
 * rejects for the program's sake (a failed spawn is an outcome); only when the log file cannot
 * be opened, which is the worker's problem and worth a retry.
 */
export async function runLocal(options: LocalRunOptions): Promise<LocalRunResult> {
  const { run, workDir, signal } = options;
  const graceMs = options.killGraceMs ?? 5000;
  const log = await CappedLog.open(options.logFile, run.maxOutputBytes, options.onLog);
  const started = Date.now();
  const finish = async (
    result: Omit<LocalRunResult, 'durationMs' | 'logBytes' | 'logTruncated'>,
  ): Promise<LocalRunResult> => {
    await log.close();
    const { bytes: logBytes, truncated: logTruncated } = log;
    return { ...result, durationMs: Date.now() - started, logBytes, logTruncated };
  };

  if (signal?.aborted) {
    return finish({ outcome: 'cancelled', exitCode: null, signal: null, reason: 'cancelled' });
  }
  const argv = run.command.map((arg) => arg.replaceAll('{serviceDir}', options.serviceDir));
  let child: ChildProcess;
  try {
    if (argv.length === 0 || !argv[0]) {
      throw new Error('empty command');
    }
    child = spawn(argv[0], argv.slice(1), {
      cwd: workDir,
      env: buildEnv(run.env, options.baseEnv ?? process.env, workDir),
      detached: true, // own process group: kill(-pid) reaches grandchildren too
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    return finish(spawnFailed(err, argv[0]));
  }

  if (child.pid !== undefined) {
    options.onSpawn?.(child.pid);
  }
  const progress = new ProgressLines(options.onProgress);
  child.stdout?.on('data', (chunk: Buffer) => {
    log.write(chunk, 'stdout');
    progress.push(chunk);
  });
  child.stderr?.on('data', (chunk: Buffer) => log.write(chunk, 'stderr'));

  let exited = false;
  let stopping: 'timed-out' | 'cancelled' | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let pipeTimer: NodeJS.Timeout | undefined;
  const killGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // ESRCH: the group is already gone.
    }
  };
  const stop = (why: 'timed-out' | 'cancelled') => {
    if (exited || stopping) {
      return;
    }
    stopping = why;
    killGroup('SIGTERM');
    killTimer = setTimeout(() => killGroup('SIGKILL'), graceMs);
  };
  const timeoutTimer = setTimeout(() => stop('timed-out'), run.timeoutSeconds * 1000);
  const onAbort = () => stop('cancelled');
  signal?.addEventListener('abort', onAbort, { once: true });
  const cleanUp = () => {
    clearTimeout(timeoutTimer);
    clearTimeout(killTimer);
    signal?.removeEventListener('abort', onAbort);
  };

  const ended = await new Promise<
    { spawnError: unknown } | { code: number | null; sig: NodeJS.Signals | null }
  >((resolve) => {
    let spawned = false;
    child.once('spawn', () => (spawned = true));
    child.on('error', (err) => {
      if (!spawned) {
        resolve({ spawnError: err });
      }
    });
    child.once('exit', () => {
      exited = true;
      cleanUp();
      // Whatever the program left behind would hold the pipes open and outlive the job.
      killGroup('SIGKILL');
      // A descendant that left the group (setsid) could hold them open forever.
      pipeTimer = setTimeout(
        () => [child.stdout, child.stderr].forEach((p) => p?.destroy()),
        graceMs,
      );
    });
    // 'close' comes after the exit and after both pipes have closed.
    child.once('close', (code: number | null, sig: NodeJS.Signals | null) => {
      clearTimeout(pipeTimer);
      resolve({ code, sig });
    });
  });
  cleanUp();
  if ('spawnError' in ended) {
    child.stdout?.destroy();
    child.stderr?.destroy();
    return finish(spawnFailed(ended.spawnError, argv[0]));
  }
  progress.end();
  const { code, sig } = ended;
  if (stopping) {
    const reason =
      stopping === 'cancelled' ? 'cancelled' : `timed out after ${run.timeoutSeconds} s`;
    return finish({ outcome: stopping, exitCode: code, signal: sig, reason });
  }
  const reason =
    code === 0 ? undefined : code !== null ? `exited with code ${code}` : `killed by ${sig}`;
  return finish({ outcome: 'exited', exitCode: code, signal: sig, reason });
}

function buildEnv(names: string[], base: NodeJS.ProcessEnv, workDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of [...ALWAYS_PASSED, ...names]) {
    if (base[name] !== undefined) {
      env[name] = base[name];
    }
  }
  env.LABGATE_WORK_DIR = workDir;
  return env;
}

function spawnFailed(err: unknown, command: string | undefined) {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const detail = code ? `${code} ${command}` : err instanceof Error ? err.message : String(err);
  return {
    outcome: 'spawn-failed' as const,
    exitCode: null,
    signal: null,
    reason: `spawn failed: ${detail}`,
  };
}
