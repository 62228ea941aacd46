import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import request from 'supertest';
import { freePort } from '../support/labgate-process';
import { startTestApp, TestApp } from '../support/test-app';

interface PrivateRedis {
  url: string;
  stop(): Promise<void>;
}

/**
 * A redis-server of this test's own (the shared one is never reconfigured), answered once it
 * logs that it accepts connections.
 */
async function startPrivateRedis(args: string[]): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'labgate-redis-'));
  const child: ChildProcess = spawn(
    'redis-server',
    ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        resolve();
      }
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${output}`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('readiness and the eviction policy of Redis', () => {
  describe('on a Redis with maxmemory 100mb and allkeys-lru', () => {
    let redis: PrivateRedis;
    let app: TestApp;

    beforeAll(async () => {
      redis = await startPrivateRedis([
        '--maxmemory',
        '100mb',
        '--maxmemory-policy',
        'allkeys-lru',
      ]);
      app = await startTestApp({ REDIS_URL: redis.url });
    });
    afterAll(async () => {
      await app?.close();
      await redis?.stop();
    });

    it('stays ready (200) but warns that queued work could be evicted', async () => {
      const res = await request(app.app.getHttpServer()).get('/health/ready').expect(200);
      expect(res.body.status).toBe('ok');
      expect(res.body.checks.redis).toMatchObject({
        status: 'up',
        maxmemoryPolicy: 'allkeys-lru',
        maxmemory: 100 * 1024 * 1024,
      });
      expect(res.body.warnings).toHaveLength(1);
      expect(res.body.warnings[0]).toMatch(
        /^redis: .*allkeys-lru with maxmemory 100 MiB.*maxmemory-policy noeviction/,
      );
    });

    it('does not warn once the policy is noeviction, nor for a policy with no memory limit', async () => {
      // This Redis is the test's own: reconfiguring it touches nobody else.
      const admin = new Redis(redis.url);
      try {
        await admin.config('SET', 'maxmemory-policy', 'noeviction');
        let res = await request(app.app.getHttpServer()).get('/health/ready').expect(200);
        expect(res.body.warnings).toEqual([]);
        expect(res.body.checks.redis.maxmemoryPolicy).toBe('noeviction');

        await admin.config('SET', 'maxmemory-policy', 'volatile-lru');
        await admin.config('SET', 'maxmemory', '0');
        res = await request(app.app.getHttpServer()).get('/health/ready').expect(200);
        expect(res.body.warnings).toEqual([]);

        await admin.config('SET', 'maxmemory', '100mb');
        res = await request(app.app.getHttpServer()).get('/health/ready').expect(200);
        expect(res.body.warnings[0]).toMatch(/volatile-lru/);
      } finally {
        admin.disconnect();
      }
    });
  });

  describe('on a Redis whose CONFIG command is disabled', () => {
    let redis: PrivateRedis;
    let app: TestApp;

    beforeAll(async () => {
      redis = await startPrivateRedis([
        '--maxmemory',
        '100mb',
        '--maxmemory-policy',
        'allkeys-lru',
        '--rename-command',
        'CONFIG',
        '',
      ]);
      app = await startTestApp({ REDIS_URL: redis.url });
    });
    afterAll(async () => {
      await app?.close();
      await redis?.stop();
    });

    it('reads the policy from INFO memory and still warns', async () => {
      const probe = new Redis(redis.url);
      await expect(probe.config('GET', 'maxmemory-policy')).rejects.toThrow(/unknown command/i);
      probe.disconnect();

      const res = await request(app.app.getHttpServer()).get('/health/ready').expect(200);
      expect(res.body.checks.redis.maxmemoryPolicy).toBe('allkeys-lru');
      expect(res.body.warnings).toEqual([
        expect.stringMatching(/allkeys-lru with maxmemory 100 MiB/),
      ]);
    });
  });

  it('reports no warning on a Redis set up as Bull needs it', async () => {
    const app = await startTestApp();
    try {
      const res = await request(app.app.getHttpServer()).get('/health/ready').expect(200);
      expect(res.body.warnings).toEqual([]);
      // The shared test Redis runs without a memory limit (so nothing is evicted).
      expect(res.body.checks.redis.maxmemory).toBe(0);
    } finally {
      await app.close();
    }
  });
});
