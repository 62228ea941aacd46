import { mkdir, stat } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import type { RunSpec } from '../../catalog/manifest';
import type { SshSettings } from '../../devices/device.entity';
import { CappedLog } from './capped-log';
import {
  fillCommand,
  isSafeSegment,
  jobScript,
  parseClusterState,
  parseExternalId,
  REMOTE,
  shellQuote,
  TERMINAL_STATES,
} from './ssh-script';
import { errorText, SshSession, SshTransportError, type SshTarget } from './ssh-session';

export interface SshRunOptions {
  settings: SshSettings;
  /** Contents of settings.privateKeyFile. */
  privateKey: string | Buffer;
  jobId: string;
  /** Holds inputs.json and inputs/; receives outputs/ and the log. */
  localWorkDir: string;
  /** Uploaded as `<remote job dir>/service`, which `{serviceDir}` in the argv then names. */
  serviceDir: string;
  run: RunSpec;
  /** Exported by the job script: the whitelisted values, LABGATE_JOB_ID and the like. */
  env?: Record<string, string>;
  /** Abort = cancel: cancelCommand for the cluster job, remote folder removed. */
  signal: AbortSignal;
  /** Awaited before polling starts; if it throws, the cluster job is cancelled and it rethrows. */
  onSubmitted?: (externalId: string) => void | Promise<void>;
  /** Each state the status command reports, for progress messages. */
  onState?: (clusterState: string) => void;
  /** Where the downloaded log goes (default `<localWorkDir>/log.txt`). */
  logFile?: string;
  /** Default 20000. */
  connectTimeoutMs?: number;
}

export type SshRunResult =
  /** No statusCommand: the cluster reports completion itself, later. */
  | { outcome: 'submitted'; externalId: string }
  | { outcome: 'exited'; externalId: string; exitCode: number; clusterState: string }
  /**
   * retryable: nothing was submitted and the failure was the connection's (refused, reset,
   * timed out), so the same job may be tried again; never after a submit could have happened.
   */
  | { outcome: 'failed'; externalId?: string; reason: string; retryable: boolean }
  | { outcome: 'cancelled'; externalId?: string };

/** Submit, status and cancel commands: sacct on a busy cluster can take a while. */
const COMMAND_TIMEOUT_MS = 120_000;
/** Reconnects while following a submitted job before giving up on it. */
const RECONNECTS = 3;
/** A status command that fails this many times in a row: the job is looked at as ended. */
const STATUS_FAILURES = 3;
/** sacct may not list a job just submitted: empty output only counts once it was seen or after this. */
const EMPTY_POLLS = 3;
/** The login node's view of a shared file system may lag behind the compute node's. */
const EXIT_CODE_GRACE_MS = 2000;
/** State reported when the status command stops listing the job (squeue after it ended). */
export const UNLISTED_STATE = 'UNLISTED';

/**
 * Runs a service's command as a job of an HPC cluster reached over SSH: uploads inputs and the
 * service folder, writes and submits `job.sh`, polls the cluster's state (unless the cluster
 * calls back), downloads the log and outputs, and removes the remote folder. Resolves with an
 * outcome for everything that concerns the cluster or the connection; rejects only for a
 * bad call (job id) or when onSubmitted throws.
 */
export async function runOverSsh(options: SshRunOptions): Promise<SshRunResult> {
  if (!isSafeSegment(options.jobId)) {
    throw new Error(`job id cannot name a remote folder: ${JSON.stringify(options.jobId)}`);
  }
  if (options.signal.aborted) {
    return { outcome: 'cancelled' };
  }
  const { settings } = options;
  const link = new Link({
    host: settings.host,
    port: settings.port,
    username: settings.username,
    privateKey: options.privateKey,
    hostFingerprint: settings.hostFingerprint,
    connectTimeoutMs: options.connectTimeoutMs ?? 20_000,
  });
  try {
    return await new ClusterJob(options, link).run();
  } finally {
    await link.close();
  }
}

type Ended = { state: string; note?: string } | 'cancelled';

class ClusterJob {
  private jobDir?: string;
  private externalId?: string;
  private phase: 'prepare' | 'submit' | 'follow' | 'collect' = 'prepare';

  constructor(
    private readonly o: SshRunOptions,
    private readonly link: Link,
  ) {}

  async run(): Promise<SshRunResult> {
    const { signal, settings } = this.o;
    try {
      await this.link.use((s) => this.prepare(s));
      if (signal.aborted) {
        return await this.cancel();
      }
      this.phase = 'submit';
      const rejected = await this.link.use((s) => this.submit(s));
      if (rejected) {
        await this.removeRemote();
        return rejected;
      }
      const externalId = this.externalId!;
      await this.notifySubmitted(externalId);
      if (signal.aborted) {
        return await this.cancel();
      }
      if (!settings.statusCommand) {
        return { outcome: 'submitted', externalId };
      }
      this.phase = 'follow';
      const ended = await this.follow(settings.statusCommand);
      if (ended === 'cancelled') {
        return await this.cancel();
      }
      this.phase = 'collect';
      const result = await this.link.use((s) => this.collect(s, ended), RECONNECTS);
      await this.removeRemote();
      return result;
    } catch (err) {
      if (err instanceof CallerError) {
        throw err.cause;
      }
      if (!this.externalId) {
        await this.removeRemote(); // nothing runs there
      }
      return this.failed(err);
    }
  }

  private async prepare(s: SshSession): Promise<void> {
    const { settings, localWorkDir, jobId } = this.o;
    // SFTP resolves relative paths against the home folder; `~` it does not know.
    const base = settings.workDir.replace(/^~(\/|$)/, '') || '.';
    await s.mkdirp(base);
    const jobDir = posix.join(await s.realpath(base), jobId);
    this.jobDir = jobDir;
    // A folder left by an earlier attempt would hand its exit_code to this one.
    if (await s.lstat(jobDir)) {
      await this.exec(s, `rm -rf -- ${shellQuote(jobDir)}`, 'removing an earlier attempt');
    }
    await s.mkdirp(jobDir);
    const inputsJson = join(localWorkDir, REMOTE.inputsJson);
    await s.upload(
      inputsJson,
      posix.join(jobDir, REMOTE.inputsJson),
      (await stat(inputsJson)).mode,
    );
    const inputs = join(localWorkDir, REMOTE.inputs);
    if ((await stat(inputs).catch(() => undefined))?.isDirectory()) {
      await s.uploadDir(inputs, posix.join(jobDir, REMOTE.inputs));
    }
    if (this.o.signal.aborted) {
      return;
    }
    const serviceDir = posix.join(jobDir, REMOTE.service);
    await s.uploadDir(this.o.serviceDir, serviceDir);
    const script = jobScript({
      jobDir,
      argv: this.o.run.command.map((arg) => arg.replaceAll('{serviceDir}', serviceDir)),
      env: { LABGATE_JOB_ID: jobId, ...this.o.env, LABGATE_WORK_DIR: jobDir },
      timeoutSeconds: this.o.run.timeoutSeconds,
    });
    await s.writeFile(posix.join(jobDir, REMOTE.script), script, 0o755);
  }

  /** Undefined when the cluster took the job (externalId set), else the failure. */
  private async submit(s: SshSession): Promise<SshRunResult | undefined> {
    const jobDir = this.jobDir!;
    const script = posix.join(jobDir, REMOTE.script);
    // From the job folder, so that the scheduler's own output files land there too.
    const command = `cd ${shellQuote(jobDir)} && ${fillCommand(this.o.settings.submitCommand, { script })}`;
    const result = await s.exec(command, COMMAND_TIMEOUT_MS);
    if (result.code !== 0) {
      const why = brief(result.stderr) || brief(result.stdout) || 'no output';
      return this.failed(`submit command exited with ${result.code ?? 'a signal'}: ${why}`);
    }
    const id = parseExternalId(result.stdout);
    if (!id) {
      return this.failed(`submit command printed no job id${withOutput(result.stderr)}`);
    }
    this.externalId = id;
    return undefined;
  }

  private async notifySubmitted(externalId: string): Promise<void> {
    try {
      await this.o.onSubmitted?.(externalId);
    } catch (err) {
      // Nobody could follow a cluster job whose id was not recorded.
      await this.cancel();
      throw new CallerError(err);
    }
  }

  private async follow(statusCommand: string): Promise<Ended> {
    const { signal, settings } = this.o;
    const command = fillCommand(statusCommand, { id: this.externalId! });
    const pollMs = Math.max(settings.pollSeconds * 1000, 100);
    let seen = false;
    let emptyPolls = 0;
    let failures = 0;
    for (;;) {
      if (await pause(pollMs, signal)) {
        return 'cancelled';
      }
      const result = await this.link.use((s) => s.exec(command, COMMAND_TIMEOUT_MS), RECONNECTS);
      if (signal.aborted) {
        return 'cancelled';
      }
      const state = parseClusterState(result.stdout);
      if (result.code !== 0 && !state) {
        if (++failures < STATUS_FAILURES) {
          continue;
        }
        const note = `the status command failed ${failures} times${withOutput(result.stderr)}`;
        return { state: 'UNKNOWN', note };
      }
      failures = 0;
      if (!state) {
        if (seen || ++emptyPolls >= EMPTY_POLLS) {
          return { state: UNLISTED_STATE };
        }
        continue;
      }
      seen = true;
      this.o.onState?.(state);
      if (TERMINAL_STATES.has(state)) {
        return { state };
      }
    }
  }

  private async collect(
    s: SshSession,
    ended: { state: string; note?: string },
  ): Promise<SshRunResult> {
    const { localWorkDir, run } = this.o;
    const jobDir = this.jobDir!;
    const externalId = this.externalId!;
    await this.downloadLog(s, posix.join(jobDir, REMOTE.log), run.maxOutputBytes);
    const outputs = posix.join(jobDir, REMOTE.outputs);
    if ((await s.lstat(outputs))?.isDirectory()) {
      await s.downloadDir(outputs, join(localWorkDir, REMOTE.outputs));
    }
    const exitCodeFile = posix.join(jobDir, REMOTE.exitCode);
    let exitText = await s.readSmallFile(exitCodeFile, 32);
    if (exitText === undefined && ended.state !== 'CANCELLED') {
      await pause(EXIT_CODE_GRACE_MS);
      exitText = await s.readSmallFile(exitCodeFile, 32);
    }
    if ((await s.lstat(posix.join(jobDir, REMOTE.timedOut)))?.isFile()) {
      return this.failed(`timed out after ${run.timeoutSeconds} s`);
    }
    const exitCode = /^\d+$/.test(exitText?.trim() ?? '') ? Number(exitText) : undefined;
    if (exitCode !== undefined) {
      return { outcome: 'exited', externalId, exitCode, clusterState: ended.state };
    }
    const note = ended.note ? ` (${ended.note})` : '';
    return this.failed(
      `the cluster ended job ${externalId} as ${ended.state} before it finished${note}`,
    );
  }

  /** The log's head up to the cap, with the same truncation marker as a local run's. */
  private async downloadLog(s: SshSession, remote: string, cap: number): Promise<void> {
    const local = this.o.logFile ?? join(this.o.localWorkDir, REMOTE.log);
    await mkdir(dirname(local), { recursive: true });
    const log = await CappedLog.open(local, cap);
    try {
      if ((await s.lstat(remote))?.isFile()) {
        // One byte past the cap is enough for the log to notice the cut.
        await s.read(remote, cap + 1, (chunk) => log.write(chunk, 'stdout'));
      }
    } finally {
      await log.close();
    }
  }

  private async cancel(): Promise<SshRunResult> {
    const { cancelCommand } = this.o.settings;
    const externalId = this.externalId;
    if (externalId && cancelCommand) {
      await this.link
        .use((s) => s.exec(fillCommand(cancelCommand, { id: externalId }), COMMAND_TIMEOUT_MS), 1)
        .catch(() => undefined); // best effort: the cluster's own limits end it otherwise
    }
    await this.removeRemote();
    return { outcome: 'cancelled', externalId };
  }

  private async removeRemote(): Promise<void> {
    const jobDir = this.jobDir;
    if (!jobDir) {
      return;
    }
    await this.link
      .use((s) => s.exec(`rm -rf -- ${shellQuote(jobDir)}`, COMMAND_TIMEOUT_MS), 1)
      .catch(() => undefined); // best effort: a leftover folder only costs disk space
  }

  private async exec(s: SshSession, command: string, what: string): Promise<void> {
    const result = await s.exec(command, COMMAND_TIMEOUT_MS);
    if (result.code !== 0) {
      throw new Error(`${what} failed on ${s.where}${withOutput(result.stderr)}`);
    }
  }

  private failed(err: unknown): SshRunResult & { outcome: 'failed' } {
    const where = `${this.o.settings.host}:${this.o.settings.port}`;
    let reason = errorText(err);
    if ((this.phase === 'follow' || this.phase === 'collect') && err instanceof SshTransportError) {
      const doing = this.phase === 'follow' ? 'following' : 'collecting the results of';
      reason = `lost contact with ${where} while ${doing} cluster job ${this.externalId}: ${reason}`;
    }
    return {
      outcome: 'failed',
      externalId: this.externalId,
      reason,
      retryable: this.phase === 'prepare' && err instanceof SshTransportError,
    };
  }
}

/** An error of the caller's callback, which runOverSsh passes on rather than reporting. */
class CallerError extends Error {
  constructor(override readonly cause: unknown) {
    super(errorText(cause));
  }
}

/** One connection at a time, made again when it broke. */
class Link {
  private session?: SshSession;

  constructor(private readonly target: SshTarget) {}

  /** Runs work on a live session; after a transport error, reconnects up to `reconnects` times. */
  async use<T>(work: (session: SshSession) => Promise<T>, reconnects = 0): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        if (!this.session || this.session.isClosed) {
          this.session = undefined;
          this.session = await SshSession.connect(this.target);
        }
        return await work(this.session);
      } catch (err) {
        if (!(err instanceof SshTransportError) || attempt >= reconnects) {
          throw err;
        }
        await this.close();
        await pause(Math.min(1000 * 2 ** attempt, 10_000));
      }
    }
  }

  async close(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    await session?.close();
  }
}

/** Waits; resolves true at once when the signal aborts meanwhile. */
function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve(true);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(false);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function brief(text: string): string {
  const trimmed = text.trim();
  return trimmed.length > 500 ? `${trimmed.slice(0, 500)}…` : trimmed;
}

function withOutput(text: string): string {
  const b = brief(text);
  return b ? `: ${b}` : '';
}
