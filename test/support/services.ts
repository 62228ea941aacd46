import { execSync } from 'node:child_process';
import { createConnection } from 'node:net';

export const PG_ADMIN_URL =
  process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitForPort(port: number, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await portOpen(port)) {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not come up on 127.0.0.1:${port}`);
}

/** The suite needs the machine's PostgreSQL and Redis; start them when they are down. */
export async function ensureServices(): Promise<void> {
  if (!(await portOpen(5432))) {
    execSync('pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start', {
      stdio: 'inherit',
    });
    await waitForPort(5432, 'PostgreSQL');
  }
  if (!(await portOpen(6379))) {
    execSync(
      'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
      { stdio: 'inherit' },
    );
    await waitForPort(6379, 'Redis');
  }
}
