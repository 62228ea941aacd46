import type { SshSettings } from '../../src/devices/device.entity';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

const SSHD = '/usr/sbin/sshd';

export interface TestSshd {
  host: string;
  port: number;
  username: string;
  privateKey: string;
  privateKeyFile: string;
  /** `SHA256:…` of the host key, from `ssh-keygen -lf`. */
  hostFingerprint: string;
  /** Fake cluster commands: `sbatch --parsable <script>`, `fake-status <id>`, `scancel <id>`. */
  binDir: string;
  /** Where the fake cluster keeps `<id>.pid`, `<id>.state`, `<id>.dir` and the script output. */
  stateDir: string;
  stop(): Promise<void>;
}

/** Settings of a device (runner ssh) on this server and its fake Slurm. */
export function sshSettings(
  sshd: TestSshd,
  workDir: string,
  overrides: Partial<SshSettings> = {},
): SshSettings {
  return {
    host: sshd.host,
    port: sshd.port,
    username: sshd.username,
    privateKeyFile: sshd.privateKeyFile,
    hostFingerprint: sshd.hostFingerprint,
    workDir,
    submitCommand: `${sshd.binDir}/sbatch --parsable {script}`,
    statusCommand: `${sshd.binDir}/fake-status {id}`,
    cancelCommand: `${sshd.binDir}/scancel {id}`,
    pollSeconds: 1,
    ...overrides,
  };
}

/**
 * A real OpenSSH server on loopback, with a fresh host key and client key, accepting only that
 * key, plus a fake Slurm (shell scripts) to submit to. Everything lives in one temp folder.
 */
export async function startSshd(): Promise<TestSshd> {
  const root = mkdtempSync(join(tmpdir(), 'labgate-sshd-'));
  const hostKey = join(root, 'host_ed25519');
  const clientKey = join(root, 'client_ed25519');
  keygen(hostKey);
  keygen(clientKey);
  const authorizedKeys = join(root, 'authorized_keys');
  writeFileSync(authorizedKeys, readFileSync(`${clientKey}.pub`));
  const hostFingerprint = execFileSync('ssh-keygen', ['-lf', `${hostKey}.pub`], {
    encoding: 'utf8',
  })
    .split(' ')[1]
    .trim();
  const binDir = join(root, 'bin');
  const stateDir = join(root, 'state');
  mkdirSync(stateDir);
  writeFakeSlurm(binDir, stateDir);
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // sshd's privilege separation dir

  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort(); // another process could take it before sshd binds: retried
    const config = join(root, 'sshd_config');
    writeFileSync(
      config,
      [
        `ListenAddress 127.0.0.1:${port}`,
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${authorizedKeys}`,
        `PidFile ${join(root, 'sshd.pid')}`,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'PermitRootLogin prohibit-password',
        'Subsystem sftp internal-sftp',
        'LogLevel INFO',
        '',
      ].join('\n'),
    );
    const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      await listening(child, port);
    } catch (err) {
      lastError = err as Error;
      continue;
    }
    return {
      host: '127.0.0.1',
      port,
      username: userInfo().username,
      privateKey: readFileSync(clientKey, 'utf8'),
      privateKeyFile: clientKey,
      hostFingerprint,
      binDir,
      stateDir,
      stop: async () => {
        await stopProcess(child);
        rmSync(root, { recursive: true, force: true });
      },
    };
  }
  rmSync(root, { recursive: true, force: true });
  throw lastError ?? new Error('sshd did not start');
}

function keygen(file: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'labgate-test', '-f', file]);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves when sshd says it listens; rejects with its stderr when it exits first. */
function listening(child: ChildProcess, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    const onData = (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes(`Server listening on 127.0.0.1 port ${port}`)) {
        cleanUp();
        // Keep draining: a full pipe would block sshd's logging.
        child.stderr?.resume();
        resolve();
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      cleanUp();
      reject(new Error(`sshd exited (${code ?? signal}) before listening:\n${stderr}`));
    };
    const onError = (err: Error) => {
      cleanUp();
      reject(new Error(`cannot start ${SSHD}: ${err.message}`));
    };
    const timer = setTimeout(() => {
      cleanUp();
      child.kill('SIGKILL');
      reject(new Error(`sshd did not listen within 10 s:\n${stderr}`));
    }, 10_000);
    const cleanUp = () => {
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/**
 * A fake Slurm, enough for the runner: jobs run right away in a session of their own (so that
 * scancel reaches everything they start), states come from the job's liveness and exit_code.
 */
function writeFakeSlurm(binDir: string, stateDir: string): void {
  mkdirSync(binDir);
  const state = `STATE_DIR='${stateDir}'`;
  const scripts: Record<string, string> = {
    sbatch: `#!/bin/sh
${state}
[ "$1" = --parsable ] && shift
script=$1
if [ ! -f "$script" ]; then echo "sbatch: error: Unable to open file $script" >&2; exit 1; fi
id=$$
dirname "$script" >"$STATE_DIR/$id.dir"
echo PENDING >"$STATE_DIR/$id.state"
# The job writes its own pid: it is then the session leader, whoever setsid forked.
setsid sh -c 'echo $$ >"$1"; exec sh "$2"' sh "$STATE_DIR/$id.pid" "$script" \\
  </dev/null >"$STATE_DIR/$id.out" 2>&1 &
echo "$id;fake"
`,
    'fake-status': `#!/bin/sh
${state}
id=$1
[ -f "$STATE_DIR/$id.state" ] || exit 0
state=$(cat "$STATE_DIR/$id.state")
case $state in COMPLETED|FAILED|CANCELLED) echo "$state"; exit 0;; esac
if [ ! -f "$STATE_DIR/$id.polled" ]; then
  : >"$STATE_DIR/$id.polled"
  echo PENDING; exit 0
fi
pid=$(cat "$STATE_DIR/$id.pid" 2>/dev/null)
alive=no
if [ -n "$pid" ]; then
  pstate=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)
  if [ -n "$pstate" ] && [ "$pstate" != Z ]; then alive=yes; fi
elif [ ! -f "$(cat "$STATE_DIR/$id.dir")/exit_code" ]; then
  alive=yes
fi
if [ $alive = yes ]; then echo RUNNING; exit 0; fi
code=$(cat "$(cat "$STATE_DIR/$id.dir")/exit_code" 2>/dev/null)
if [ "$code" = 0 ]; then state=COMPLETED; else state=FAILED; fi
echo $state >"$STATE_DIR/$id.state"
echo $state
`,
    scancel: `#!/bin/sh
${state}
id=$1
echo "$id" >>"$STATE_DIR/scancel.calls"
pid=$(cat "$STATE_DIR/$id.pid" 2>/dev/null)
[ -n "$pid" ] && pkill -KILL -s "$pid"
echo CANCELLED >"$STATE_DIR/$id.state"
`,
  };
  for (const [name, text] of Object.entries(scripts)) {
    writeFileSync(join(binDir, name), text);
    chmodSync(join(binDir, name), 0o755);
  }
}
