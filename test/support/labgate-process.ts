import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Environment } from '../../src/config';

const ROOT = join(__dirname, '..', '..');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * A real labgate process (`src/main.ts` or `src/worker.ts`, run through ts-node so that the
 * suite needs no build), with its output collected for assertions.
 */
export class LabgateProcess {
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: Array<{ pattern: RegExp; resolve: () => void }> = [];

  constructor(entry: 'main' | 'worker', env: Environment) {
    this.child = spawn(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', join('src', `${entry}.ts`)],
      { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } },
    );
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString();
      this.waiters = this.waiters.filter((w) => {
        if (w.pattern.test(this.output)) {
          w.resolve();
          return false;
        }
        return true;
      });
    };
    this.child.stdout!.on('data', collect);
    this.child.stderr!.on('data', collect);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  /** Resolves when the output matches `pattern`; rejects if the process exits first. */
  waitFor(pattern: RegExp): Promise<void> {
    if (pattern.test(this.output)) {
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this.waiters.push({ pattern, resolve });
      void this.exited.then(({ code }) =>
        reject(new Error(`exited (${code}) before ${pattern}:\n${this.output}`)),
      );
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
    }
    await this.exited;
  }
}
