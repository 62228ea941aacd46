import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Environment } from '../../src/config';
import { WatchedProcess } from './watched-process';

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
 * A real labgate process (`src/main.ts` or `src/worker.ts`), its output collected; from a
 * compiled checkout (`compiledRoot`, see compileCheckout) when given.
 */
export class LabgateProcess extends WatchedProcess {
  constructor(entry: 'main' | 'worker', env: Environment, compiledRoot?: string) {
    super(
      compiledRoot ? join(compiledRoot, 'src', `${entry}.js`) : join('src', `${entry}.ts`),
      [],
      env,
    );
  }
}
