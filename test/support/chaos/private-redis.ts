import { ChildProcess, spawn } from 'node:child_process';
import Redis from 'ioredis';
import { freePort } from '../labgate-process';
import { waitUntil } from '../recovery';

/**
 * A redis-server of one test file's own, on a free port, with no persistence: a chaos test may
 * shut it down, FLUSHALL it and start it again without touching the Redis other files share.
 * A restart keeps the port, so that the labgate processes reconnect to the same URL.
 */
export class PrivateRedis {
  private child?: ChildProcess;
  private exited?: Promise<void>;

  private constructor(readonly port: number) {}

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    await redis.start();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server (again), empty, and waits until it answers PING. */
  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--bind', '127.0.0.1', '--port', String(this.port), '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    await waitUntil(`redis-server on port ${this.port}`, () => this.answers(), {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
  }

  /** `SHUTDOWN NOSAVE`, as an operator (or a crash) would do it: everything in it is lost. */
  async shutdown(): Promise<void> {
    const client = this.client();
    await client.call('SHUTDOWN', 'NOSAVE').catch(() => undefined); // the connection drops
    client.disconnect();
    await this.exited;
    this.child = undefined;
  }

  async flushAll(): Promise<void> {
    const client = this.client();
    try {
      await client.flushall();
    } finally {
      client.disconnect();
    }
  }

  /** Keys matching a pattern (SCAN), e.g. `${prefix}:jobs:repeat`. */
  async keys(pattern: string): Promise<string[]> {
    const client = this.client();
    try {
      const found: string[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
        cursor = next;
        found.push(...keys);
      } while (cursor !== '0');
      return found;
    } finally {
      client.disconnect();
    }
  }

  /** How many clients subscribe to each channel (PUBSUB NUMSUB). */
  async subscribers(channels: string[]): Promise<Map<string, number>> {
    const client = this.client();
    try {
      const reply = (await client.call('PUBSUB', 'NUMSUB', ...channels)) as Array<string | number>;
      const counts = new Map<string, number>();
      for (let i = 0; i < reply.length; i += 2) {
        counts.set(String(reply[i]), Number(reply[i + 1]));
      }
      return counts;
    } finally {
      client.disconnect();
    }
  }

  /** Stops it for good (the file's afterAll). */
  async stop(): Promise<void> {
    if (this.child) {
      this.child.kill('SIGKILL');
      await this.exited;
      this.child = undefined;
    }
  }

  private client(): Redis {
    const client = new Redis(this.url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
    client.on('error', () => {});
    return client;
  }

  private async answers(): Promise<boolean> {
    const client = this.client();
    try {
      return (await client.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      client.disconnect();
    }
  }
}
