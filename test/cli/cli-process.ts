import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Environment } from '../../src/config';
import { ROOT } from '../support/watched-process';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * One run of the real CLI (`src/cli/main.ts` through ts-node, as `npm run cli` runs it in a
 * checkout) as a child process with only the given environment, like WatchedProcess; stdout
 * and stderr are kept apart, since scripts read one and people the other. `cwd` is a checkout
 * (this one by default) whose `src/cli/main.ts` runs.
 */
export async function runCli(args: string[], env: Environment, cwd = ROOT): Promise<CliRun> {
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', join('src', 'cli', 'main.ts'), ...args],
    { cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** The lines of an output, without the empty string after its final newline. */
export function lines(text: string): string[] {
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}
