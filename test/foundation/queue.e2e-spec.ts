import type { INestApplicationContext } from '@nestjs/common';
import { SystemProcessor } from '../../src/queue/system.processor';
import { SystemQueue } from '../../src/queue/system-queue.service';
import { startTestApp, startTestWorker, TestApp } from '../support/test-app';

describe('system.ping through a real worker', () => {
  let api: TestApp;
  let worker: INestApplicationContext | undefined;

  beforeAll(async () => {
    api = await startTestApp({ ROLE: 'api' });
  });
  afterAll(async () => {
    await worker?.close();
    await api.close();
  });

  it('is not processed by an API-only process', () => {
    expect(() => api.app.get(SystemProcessor)).toThrow();
  });

  it('is answered by a worker process context sharing the Redis prefix', async () => {
    const pending = api.app.get(SystemQueue).ping();
    worker = await startTestWorker(api.config);
    const answer = await pending;
    expect(answer.pong).toBe(true);
    expect(answer.worker).toMatch(/:\d+$/);
    expect(Date.parse(answer.requestedAt)).toBeLessThanOrEqual(Date.now());
    expect(worker.get(SystemProcessor)).toBeInstanceOf(SystemProcessor);
  });
});
