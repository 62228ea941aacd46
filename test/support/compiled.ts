import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import * as ts from 'typescript';
import { ROOT } from './watched-process';

/** A compiled copy of this checkout under var/, as `nest build` makes dist/ for the image. */
export interface CompiledCheckout {
  /** Its root: `src/main.js`, `src/cli/main.js`, `migrations/*.js` below it. */
  root: string;
  remove(): void;
}

/**
 * Compiles this checkout (tsconfig.build.json: src and migrations) into a fresh directory
 * under var/ (inside the checkout, so that node_modules resolve). Programs run from it start
 * as they do in production, without ts-node: no compiling at each start, and none of what
 * ts-node loads (it loads `domain`, which puts a hook on every promise and event emitter).
 * `extra`: more files (relative to the checkout, importing packages only) transpiled along.
 */
export async function compileCheckout(extra: string[] = []): Promise<CompiledCheckout> {
  mkdirSync(join(ROOT, 'var'), { recursive: true });
  const root = mkdtempSync(join(ROOT, 'var', 'compiled-'));
  const remove = () => rmSync(root, { recursive: true, force: true });
  try {
    await promisify(execFile)(
      process.execPath,
      [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', root],
      { cwd: ROOT },
    );
    for (const file of extra) {
      const { outputText } = ts.transpileModule(readFileSync(join(ROOT, file), 'utf8'), {
        compilerOptions: {
          module: ts.ModuleKind.CommonJS,
          target: ts.ScriptTarget.ES2022,
          experimentalDecorators: true,
          emitDecoratorMetadata: true,
        },
        fileName: file,
      });
      const out = join(root, file.replace(/\.ts$/, '.js'));
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, outputText);
    }
  } catch (err) {
    remove();
    throw err;
  }
  return { root, remove };
}
