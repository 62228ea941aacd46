import type { Server } from 'node:http';
import type { NestExpressApplication } from '@nestjs/platform-express';
import Redis from 'ioredis';
import request from 'supertest';
import { createApi } from '../../src/bootstrap';
import { leaseSize } from '../../src/common/rate-limiter';
import { TEST_REDIS_URL } from '../support/services';
import {
  createTestEnvironment,
  startTestApp,
  type TestApp,
  type TestEnvironment,
} from '../support/test-app';

/**
 * The API-wide limits take their slots from Redis in leases (1% of the limit): a round trip
 * serves that many requests, and one process still counts exactly. Calls without credentials
 * count per address; GET /api/v1/results is open to them.
 */
describe('rate limits: slots taken from Redis in leases', () => {
  let app: TestApp;
  let http: Server;
  let redis: Redis;

  beforeAll(async () => {
    app = await startTestApp({ RATE_LIMIT_IP_PER_MINUTE: '1000' });
    http = app.app.getHttpServer();
    redis = new Redis(TEST_REDIS_URL);
  });
  afterAll(async () => {
    redis?.disconnect();
    await app?.close();
  });

  /** Slots taken in Redis by this test's address in the current window. */
  const taken = async () => {
    const keys = await redis.keys(`${app.config.redis.prefix}:throttle:lease:ip:*`);
    expect(keys).toHaveLength(1);
    return Number(await redis.get(keys[0]));
  };

  it('asks Redis once per lease', async () => {
    expect(leaseSize(1000)).toBe(10);
    await request(http).get('/api/v1/results').expect(200);
    expect(await taken()).toBe(10);
    for (let i = 0; i < 9; i++) {
      await request(http).get('/api/v1/results').expect(200);
    }
    expect(await taken()).toBe(10);
    await request(http).get('/api/v1/results').expect(200);
    expect(await taken()).toBe(20);
  });

  it('hands the rest of a lease to requests that arrive together', async () => {
    const before = await taken(); // 20: 11 used, 9 left
    const answers = await Promise.all(
      Array.from({ length: 9 }, () => request(http).get('/api/v1/results')),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(9).fill(200));
    expect(await taken()).toBe(before);
  });
});

describe('rate limits: leases count exactly in one process, nearly so across several', () => {
  const running: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const stop of running) {
      await stop();
    }
  });

  /** `n` API instances sharing one Redis prefix (replicas), limit 250 a minute: leases of 2. */
  const replicas = async (n: number): Promise<Server[]> => {
    const env: TestEnvironment = await createTestEnvironment({ RATE_LIMIT_IP_PER_MINUTE: '250' });
    const apis: NestExpressApplication[] = [];
    running.push(async () => {
      for (const api of apis) {
        await api.close();
      }
      await env.dispose();
    });
    for (let i = 0; i < n; i++) {
      const api = await createApi(env.config);
      await api.init();
      apis.push(api);
    }
    return apis.map((api) => api.getHttpServer());
  };

  /** Calls without credentials (one address), round robin: how many went through. */
  const allowed = async (servers: Server[], n: number) => {
    let ok = 0;
    for (let i = 0; i < n; i++) {
      const res = await request(servers[i % servers.length]).get('/api/v1/results');
      expect([200, 429]).toContain(res.status);
      ok += res.status === 200 ? 1 : 0;
    }
    return ok;
  };

  it('one process: exactly the limit, then 429 with Retry-After', async () => {
    expect(leaseSize(250)).toBe(2);
    const [a] = await replicas(1);
    expect(await allowed([a], 260)).toBe(250);
    const limited = await request(a).get('/api/v1/results');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('two processes: at most (lease - 1) each refused early, and both refuse once it is spent', async () => {
    const servers = await replicas(2);
    const ok = await allowed(servers, 260);
    expect(ok).toBeGreaterThanOrEqual(250 - 2 * (leaseSize(250) - 1));
    expect(ok).toBeLessThanOrEqual(250);
    for (const server of servers) {
      expect((await request(server).get('/api/v1/results')).status).toBe(429);
    }
  });
});
