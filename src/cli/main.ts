import 'reflect-metadata';
import { buildProgram } from './program';

/**
 * `npm run cli -- <command>`: administration commands that reuse labgate's modules (see
 * program.ts). It exits explicitly: Redis and database clients of a finished command must not
 * keep the process alive.
 */
buildProgram()
  .parseAsync(process.argv)
  .then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`error: ${(err as Error)?.message ?? String(err)}\n`);
      process.exit(1);
    },
  );
