import request from 'supertest';
import { createApi } from '../../src/bootstrap';
import { createTestEnvironment, startTestApp, TestApp } from '../support/test-app';
import { TcpProxy } from '../support/tcp-proxy';

describe('health', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app.close());

  it('is live without credentials', async () => {
    const res = await request(app.app.getHttpServer()).get('/health/live').expect(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('is ready when PostgreSQL and Redis answer', async () => {
    const res = await request(app.app.getHttpServer()).get('/health/ready').expect(200);
    expect(res.body.status).toBe('ok');
    expect(res.body.checks.database.status).toBe('up');
    expect(res.body.checks.redis.status).toBe('up');
  });

  it('answers 503 naming Redis when Redis is unreachable', async () => {
    const closed = await new TcpProxy(6379).start();
    await closed.cut();
    const cutOff = await startTestApp({ REDIS_URL: `redis://127.0.0.1:${closed.port}` });
    try {
      const res = await request(cutOff.app.getHttpServer()).get('/health/ready').expect(503);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.detail).toMatch(/^Not ready: redis/);
      expect(res.body.detail).not.toMatch(/database/);
      expect(res.body.checks.database.status).toBe('up');
      expect(res.body.checks.redis.status).toBe('down');
    } finally {
      await cutOff.close();
    }
  });

  it('answers 503 naming the database when PostgreSQL goes away, and recovers', async () => {
    const proxy = await new TcpProxy(5432).start();
    const env = await createTestEnvironment();
    const url = new URL(env.database.url);
    url.port = String(proxy.port);
    const api = await createApi(
      env.config.with({ database: { ...env.config.database, url: url.toString() } }),
    );
    await api.init();
    try {
      await request(api.getHttpServer()).get('/health/ready').expect(200);
      await proxy.cut();
      const res = await request(api.getHttpServer()).get('/health/ready').expect(503);
      expect(res.body.detail).toMatch(/^Not ready: database/);
      expect(res.body.checks.redis.status).toBe('up');
      await proxy.restore();
      await request(api.getHttpServer()).get('/health/ready').expect(200);
    } finally {
      await api.close();
      await proxy.cut();
      await env.dispose();
    }
  });
});
