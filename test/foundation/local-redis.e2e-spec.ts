import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findOrStartLocalRedis, NoRedisError, redisAnswers } from '../../src/queue/local-redis';
import { TEST_REDIS_URL } from '../support/services';

describe('Redis for a newcomer (no REDIS_URL)', () => {
  const varDir = mkdtempSync(join(tmpdir(), 'labgate-embedded-'));
  afterAll(() => rmSync(varDir, { recursive: true, force: true }));

  it('starts a private redis-server under VAR_DIR when no local Redis answers', async () => {
    const redis = await findOrStartLocalRedis(varDir, { probeUrl: 'redis://127.0.0.1:1' });
    try {
      expect(redis.private).toBe(true);
      expect(await redisAnswers(redis.url)).toBe(true);
    } finally {
      await redis.stop();
    }
    expect(await redisAnswers(redis.url, 300)).toBe(false);
  });

  it('uses the local Redis when one answers', async () => {
    const redis = await findOrStartLocalRedis(varDir, { probeUrl: TEST_REDIS_URL });
    expect(redis).toMatchObject({ url: TEST_REDIS_URL, private: false });
  });

  it('says how to get Redis when there is none and no redis-server binary', async () => {
    await expect(
      findOrStartLocalRedis(varDir, {
        probeUrl: 'redis://127.0.0.1:1',
        binary: 'no-such-redis-server',
      }),
    ).rejects.toThrow(NoRedisError);
  });
});
