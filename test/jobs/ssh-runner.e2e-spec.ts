import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunSpec } from '../../src/catalog/manifest';
import type { SshSettings } from '../../src/devices/device.entity';
import {
  runOverSsh,
  type SshRunOptions,
  type SshRunResult,
} from '../../src/jobs/runner/ssh-runner';
import { sshSettings, startSshd, type TestSshd } from '../support/sshd';
import { TcpProxy } from '../support/tcp-proxy';

const NODE = process.execPath;

// Each remote command starts the account's shell with its rc files (a second here, with pyenv
// in root's .bashrc; login nodes with module systems are no faster): a job takes several.
jest.setTimeout(90_000);

/** The service every case runs: reads its inputs, writes outputs and metrics, exits as told. */
const MAIN_JS = `
const fs = require('node:fs');
const inputs = JSON.parse(fs.readFileSync('inputs.json', 'utf8'));
const text = fs.readFileSync('inputs/data/sample.txt', 'utf8');
if (inputs.pidFile) fs.writeFileSync(inputs.pidFile, String(process.pid));
console.log('reading', text.length, 'characters');
console.error('a line on stderr');
if (inputs.noise) console.log('x'.repeat(inputs.noise));
fs.mkdirSync('outputs/nested/deeper', { recursive: true });
fs.writeFileSync('outputs/upper.txt', text.toUpperCase());
fs.writeFileSync('outputs/nested/deeper/note.txt', 'deep');
fs.writeFileSync('outputs/metrics.json', JSON.stringify({
  words: text.trim().split(/\\s+/).length,
  factor: inputs.factor * 2,
  greeting: process.env.GREETING,
  jobId: process.env.LABGATE_JOB_ID,
  args: process.argv.slice(2),
}));
setTimeout(() => process.exit(inputs.exitCode ?? 0), (inputs.sleepSeconds ?? 0) * 1000);
`;

/** True once the process no longer runs: gone, or a zombie nobody reaped yet. */
function isDead(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

async function until<T>(probe: () => T | undefined, what: string, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe(runOverSsh.name, () => {
  let sshd: TestSshd;
  let scratch: string;
  let remoteRoot: string;
  let serviceDir: string;

  beforeAll(async () => {
    sshd = await startSshd();
    scratch = mkdtempSync(join(tmpdir(), 'labgate-ssh-runner-'));
    remoteRoot = join(scratch, 'cluster', 'jobs'); // created by the runner
    serviceDir = join(scratch, 'service');
    mkdirSync(join(serviceDir, 'lib'), { recursive: true });
    writeFileSync(join(serviceDir, 'lib', 'main.js'), MAIN_JS);
  });

  afterAll(async () => {
    await sshd?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  const settings = (overrides: Partial<SshSettings> = {}): SshSettings =>
    sshSettings(sshd, remoteRoot, { pollSeconds: 0.2, ...overrides });

  const spec = (overrides: Partial<RunSpec> = {}): RunSpec => ({
    command: [NODE, '{serviceDir}/lib/main.js'],
    env: ['GREETING'],
    timeoutSeconds: 60,
    maxOutputBytes: 100_000,
    ...overrides,
  });

  /** A fresh local work dir as the worker prepares it, and the options to run it. */
  const job = (
    inputs: Record<string, unknown>,
    overrides: Partial<SshRunOptions> = {},
  ): SshRunOptions & { localWorkDir: string } => {
    const jobId = `job-${randomBytes(4).toString('hex')}`;
    const localWorkDir = join(scratch, 'local', jobId);
    mkdirSync(join(localWorkDir, 'inputs', 'data'), { recursive: true });
    writeFileSync(join(localWorkDir, 'inputs.json'), JSON.stringify({ factor: 21, ...inputs }));
    writeFileSync(join(localWorkDir, 'inputs', 'data', 'sample.txt'), 'the quick brown fox\n');
    return {
      settings: settings(),
      privateKey: sshd.privateKey,
      jobId,
      localWorkDir,
      serviceDir,
      run: spec(),
      env: { GREETING: "it's $HOME `id`", LABGATE_JOB_ID: jobId },
      signal: new AbortController().signal,
      ...overrides,
    };
  };

  const remoteDir = (jobId: string) => join(remoteRoot, jobId);
  const metrics = (dir: string) =>
    JSON.parse(readFileSync(join(dir, 'outputs', 'metrics.json'), 'utf8'));

  it('runs a job on the cluster, polls it to the end and brings back log and outputs', async () => {
    const options = job({});
    const states: string[] = [];
    const submitted: string[] = [];
    const result = await runOverSsh({
      ...options,
      onSubmitted: (id) => void submitted.push(id),
      onState: (state) => states.push(state),
    });

    expect(result).toEqual({
      outcome: 'exited',
      externalId: expect.stringMatching(/^\d+$/),
      exitCode: 0,
      clusterState: 'COMPLETED',
    });
    const { externalId } = result as SshRunResult & { outcome: 'exited' };
    expect(submitted).toEqual([externalId]);
    expect(states[0]).toBe('PENDING');
    expect(states.at(-1)).toBe('COMPLETED');
    const dir = options.localWorkDir;
    expect(metrics(dir)).toEqual({
      words: 4,
      factor: 42,
      greeting: "it's $HOME `id`",
      jobId: options.jobId,
      args: [],
    });
    expect(readFileSync(join(dir, 'outputs', 'upper.txt'), 'utf8')).toBe('THE QUICK BROWN FOX\n');
    expect(readFileSync(join(dir, 'outputs', 'nested', 'deeper', 'note.txt'), 'utf8')).toBe('deep');
    const log = readFileSync(join(dir, 'log.txt'), 'utf8');
    expect(log).toContain('reading 20 characters');
    expect(log).toContain('a line on stderr');
    expect(existsSync(remoteDir(options.jobId))).toBe(false);
  });

  it('reports a non-zero exit code and keeps only the head of a long log', async () => {
    const options = job({ exitCode: 3, noise: 5000 }, { run: spec({ maxOutputBytes: 1000 }) });
    const result = await runOverSsh(options);

    expect(result).toMatchObject({ outcome: 'exited', exitCode: 3, clusterState: 'FAILED' });
    const log = readFileSync(join(options.localWorkDir, 'log.txt'), 'utf8');
    expect(log.startsWith('reading 20 characters')).toBe(true);
    expect(log).toMatch(/\[labgate: log truncated at 1000 bytes\]\n$/);
    expect(metrics(options.localWorkDir).factor).toBe(42);
    expect(existsSync(remoteDir(options.jobId))).toBe(false);
  });

  it('ends the program at the time limit with the remote timeout', async () => {
    const options = job({ sleepSeconds: 30 }, { run: spec({ timeoutSeconds: 1 }) });
    const started = Date.now();
    const result = await runOverSsh(options);

    expect(result).toMatchObject({ outcome: 'failed', reason: 'timed out after 1 s' });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(existsSync(remoteDir(options.jobId))).toBe(false);
  });

  it('reconnects when the connection drops while it polls, and still collects the results', async () => {
    const proxy = await new TcpProxy(sshd.port, sshd.host).start();
    const options = job({ sleepSeconds: 2 }, { settings: settings({ port: proxy.port }) });
    let outage: Promise<void> | undefined;
    try {
      const result = await runOverSsh({
        ...options,
        onState: () => {
          // Down for longer than the first reconnect's pause: the retry path must carry it.
          outage ??= proxy
            .cut()
            .then(() => new Promise((r) => setTimeout(r, 1500)))
            .then(() => proxy.restore());
        },
      });

      expect(result).toMatchObject({ outcome: 'exited', exitCode: 0, clusterState: 'COMPLETED' });
      expect(metrics(options.localWorkDir).factor).toBe(42);
      expect(existsSync(remoteDir(options.jobId))).toBe(false);
    } finally {
      await outage;
      await proxy.cut();
    }
  });

  it('refuses a server whose host key differs from the registered one, before any command', async () => {
    const wrong = `SHA256:${randomBytes(32).toString('base64').replace(/=+$/, '')}`;
    const options = job({}, { settings: settings({ hostFingerprint: wrong }) });
    const submitted = jest.fn();
    const before = readdirSync(sshd.stateDir);

    const result = await runOverSsh({ ...options, onSubmitted: submitted });

    expect(result).toMatchObject({ outcome: 'failed', retryable: false });
    const { reason } = result as { reason: string };
    expect(reason).toContain(wrong);
    expect(reason).toContain(sshd.hostFingerprint);
    expect(reason).toContain(`${sshd.host}:${sshd.port}`);
    expect(existsSync(remoteDir(options.jobId))).toBe(false);
    expect(readdirSync(sshd.stateDir)).toEqual(before);
    expect(submitted).not.toHaveBeenCalled();
  });

  it('names host and port when the server cannot be reached', async () => {
    const options = job({}, { settings: settings({ port: 1 }) });
    const result = await runOverSsh(options);

    expect(result).toMatchObject({ outcome: 'failed', retryable: true });
    expect((result as { reason: string }).reason).toContain(`${sshd.host}:1`);
  });

  it('reports the stderr of a submit command that fails, and cleans up', async () => {
    const submitCommand = `echo 'sbatch: error: QOSMaxSubmitJobPerUserLimit' >&2; exit 1 # {script}`;
    const options = job({}, { settings: settings({ submitCommand }) });
    const result = await runOverSsh(options);

    expect(result).toEqual({
      outcome: 'failed',
      externalId: undefined,
      reason: 'submit command exited with 1: sbatch: error: QOSMaxSubmitJobPerUserLimit',
      retryable: false,
    });
    expect(existsSync(remoteDir(options.jobId))).toBe(false);
  });

  it('returns right after the submit when the cluster calls back, the job running on', async () => {
    const options = job({}, { settings: settings({ statusCommand: undefined }) });
    const submitted: string[] = [];
    const result = await runOverSsh({ ...options, onSubmitted: (id) => void submitted.push(id) });

    expect(result).toEqual({ outcome: 'submitted', externalId: expect.stringMatching(/^\d+$/) });
    expect(submitted).toEqual([(result as { externalId: string }).externalId]);
    const exitCodeFile = join(remoteDir(options.jobId), 'exit_code');
    await until(() => existsSync(exitCodeFile), 'the job script to finish');
    expect(readFileSync(exitCodeFile, 'utf8').trim()).toBe('0');
    expect(metrics(remoteDir(options.jobId)).factor).toBe(42);
  });

  it('cancels a running job on the cluster and removes its folder', async () => {
    const pidFile = join(scratch, `pid-${randomBytes(4).toString('hex')}`);
    const controller = new AbortController();
    const options = job({ sleepSeconds: 60, pidFile }, { signal: controller.signal });
    let externalId: string | undefined;
    const running = runOverSsh({
      ...options,
      onSubmitted: (id) => void (externalId = id),
      onState: (state) => {
        if (state === 'RUNNING' && existsSync(pidFile)) {
          controller.abort();
        }
      },
    });

    const result = await running;
    expect(result).toEqual({ outcome: 'cancelled', externalId });
    expect(readFileSync(join(sshd.stateDir, 'scancel.calls'), 'utf8')).toContain(`${externalId}\n`);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await until(() => isDead(pid), `process ${pid} to end`, 5000);
    expect(existsSync(remoteDir(options.jobId))).toBe(false);
  });

  it('passes hostile arguments to the program literally', async () => {
    const marker = `/tmp/pwned-${randomBytes(6).toString('hex')}`;
    const hostile = [
      `'; touch ${marker}; '`,
      `$(touch ${marker})`,
      `\`touch ${marker}\``,
      `a b\nc "d" \\e`,
      '',
      '*',
    ];
    const options = job(
      {},
      { run: spec({ command: [NODE, '{serviceDir}/lib/main.js', ...hostile] }) },
    );
    const result = await runOverSsh(options);

    expect(result).toMatchObject({ outcome: 'exited', exitCode: 0 });
    expect(metrics(options.localWorkDir).args).toEqual(hostile);
    expect(existsSync(marker)).toBe(false);
  });
});
