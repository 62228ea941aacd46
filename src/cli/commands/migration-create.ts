import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { CliError } from '../cli-error';
import { CliIo, loadCliConfig } from '../cli-runtime';

export interface MigrationCreateOptions {
  blank?: boolean;
  initial?: boolean;
  dump?: boolean;
  name?: string;
}

/** The `mikro-orm` binary, a development dependency (absent from the production image). */
function mikroOrmCli(): string {
  try {
    return join(dirname(require.resolve('@mikro-orm/cli/package.json')), 'cli');
  } catch {
    throw new CliError(
      'migration:create needs the development dependencies (@mikro-orm/cli): run it in a ' +
        'checkout after `npm install`, not in the production image',
    );
  }
}

/**
 * `migration:create`: `npm run migration:create` (the mikro-orm CLI, configured by package.json
 * and src/database/mikro-orm.config.ts), so that both write the same migration. It diffs the
 * entities against migrations/.snapshot.json and writes migrations/Migration<timestamp>.ts.
 */
export async function migrationCreate(options: MigrationCreateOptions, io: CliIo): Promise<void> {
  if (!loadCliConfig().database.url) {
    throw new CliError(
      'migration:create needs DATABASE_URL: a scratch PostgreSQL database (see "Database migrations" in the README)',
    );
  }
  const args = ['migration:create'];
  for (const flag of ['blank', 'initial', 'dump'] as const) {
    if (options[flag]) {
      args.push(`--${flag}`);
    }
  }
  if (options.name) {
    args.push('--name', options.name);
  }
  const child = spawn(process.execPath, [mikroOrmCli(), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let errors = '';
  child.stdout.on('data', (chunk: Buffer) => process.stdout.write(chunk));
  child.stderr.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
    if (io.verbose) {
      process.stderr.write(chunk);
    }
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) {
    // mikro-orm prints a stack trace and its usage; the first line says what went wrong.
    const first = errors.split('\n').find((line) => line.trim() !== '' && !/^\s+at /.test(line));
    throw new CliError(`mikro-orm migration:create failed: ${first?.trim() ?? `exit ${code}`}`);
  }
}
