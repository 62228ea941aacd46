import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Environment } from '../../src/config';
import { compileCheckout } from '../support/compiled';
import { ROOT } from '../support/watched-process';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** This checkout's CLI compiled by `compileCli`, while a test file uses it. */
let compiled: string | undefined;

/**
 * Compiles this checkout once (compileCheckout), so that each CLI run here starts without
 * ts-node compiling the whole program again (about 2 s a run instead of 7 on a CI machine).
 * Returns the undo.
 */
export async function compileCli(): Promise<() => void> {
  const checkout = await compileCheckout();
  compiled = join(checkout.root, 'src', 'cli', 'main.js');
  return () => {
    compiled = undefined;
    checkout.remove();
  };
}

/**
 * One run of the real CLI as a child process with only the given environment, like
 * WatchedProcess; stdout and stderr are kept apart, since scripts read one and people the
 * other. In this checkout it is the compiled CLI once `compileCli` has run (what the image
 * runs); in another checkout (`cwd`), its `src/cli/main.ts` through ts-node, as `npm run cli`
 * runs it there.
 */
export async function runCli(args: string[], env: Environment, cwd = ROOT): Promise<CliRun> {
  const entry =
    cwd === ROOT && compiled
      ? [compiled]
      : ['-r', 'ts-node/register/transpile-only', join('src', 'cli', 'main.ts')];
  const child = spawn(process.execPath, [...entry, ...args], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
  });
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
