import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CliError } from '../cli-error';
import type { CliIo } from '../cli-runtime';
import { freshSecrets, renderEnvFile } from '../env-file';

/**
 * `config:init`: a documented `.env` with fresh secrets. It never replaces a file (created with
 * O_EXCL: even a file appearing meanwhile is kept), and the new one is readable by its owner
 * only, since it holds secrets.
 */
export function configInit(options: { path: string }, io: CliIo): void {
  const path = resolve(options.path);
  try {
    writeFileSync(path, renderEnvFile(freshSecrets()), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new CliError(
        `${path} exists; config:init never overwrites a file (move it away, or give --path)`,
      );
    }
    throw new CliError(`cannot write ${path} (${code ?? (err as Error).message})`);
  }
  io.out(
    `wrote ${path}: METRICS_TOKEN generated; set DATABASE_URL, REDIS_URL and OIDC_ISSUER before production`,
  );
}
