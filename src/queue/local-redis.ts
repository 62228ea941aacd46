import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import Redis from 'ioredis';

export const DEFAULT_LOCAL_REDIS = 'redis://127.0.0.1:6379';

export interface LocalRedis {
  url: string;
  /** True when labgate started the server itself (and stops it on shutdown). */
  private: boolean;
  stop(): Promise<void>;
}

export class NoRedisError extends Error {
  constructor() {
    super(
      'No Redis: nothing answers on 127.0.0.1:6379 and no redis-server binary is installed. ' +
        'Set REDIS_URL, or install Redis (Debian/Ubuntu: apt-get install redis-server; ' +
        'macOS: brew install redis).',
    );
    this.name = 'NoRedisError';
  }
}

/** True when a Redis at `url` answers PING within a second. */
export async function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The Redis a development machine can offer with no configuration: the usual local one if it
 * answers, else a private `redis-server` with its data under VAR_DIR.
 */
export async function findOrStartLocalRedis(
  varDir: string,
  { probeUrl = DEFAULT_LOCAL_REDIS, binary = 'redis-server' } = {},
): Promise<LocalRedis> {
  if (await redisAnswers(probeUrl)) {
    return { url: probeUrl, private: false, stop: async () => {} };
  }
  const dir = join(varDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const child = spawn(
    binary,
    ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--appendonly', 'yes'],
    { stdio: 'ignore' },
  );
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false));
    child.once('spawn', () => resolve(true));
  });
  if (!spawned) {
    throw new NoRedisError();
  }
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 50 && !(await redisAnswers(url, 200)); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!(await redisAnswers(url))) {
    child.kill('SIGKILL');
    throw new Error(`the private redis-server on port ${port} did not start`);
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url,
    private: true,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
