import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

/**
 * An entry point of this repository as a real child process, its stdout and stderr collected
 * for assertions: a TypeScript file through ts-node (so that the suite needs no build), or a
 * compiled `.js` file (see compileCheckout) with plain node.
 */
export class WatchedProcess {
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<Exit>;
  private waiters: Array<{ pattern: RegExp; resolve: (match: RegExpExecArray) => void }> = [];

  constructor(entry: string, args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(
      process.execPath,
      [...(entry.endsWith('.js') ? [] : ['-r', 'ts-node/register/transpile-only']), entry, ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } },
    );
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString();
      this.waiters = this.waiters.filter((w) => {
        const match = w.pattern.exec(this.output);
        if (match) {
          w.resolve(match);
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

  /**
   * Resolves with the first match of `pattern` in the output; rejects if the process exits
   * first, or after `timeoutMs` (with the output so far, to see why).
   */
  waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
    const match = pattern.exec(this.output);
    if (match) {
      return Promise.resolve(match);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.pattern !== pattern);
        reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${this.output}`));
      }, timeoutMs);
      this.waiters.push({
        pattern,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
      void this.exited.then(({ code }) => {
        clearTimeout(timer);
        reject(new Error(`exited (${code}) before ${pattern}:\n${this.output}`));
      });
    });
  }

  /** SIGTERM (a clean stop), then waits for the exit. */
  async stop(): Promise<Exit> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
    }
    return this.exited;
  }
}
