import type { Server } from 'node:http';
import { getQueueToken } from '@nestjs/bull';
import type { Queue } from 'bull';
import { Client } from 'pg';
import request from 'supertest';
import { QueueName } from '../../src/queue/queue.constants';
import { bearer, mintAccessToken } from '../support/auth';
import { LabgateProcess } from '../support/labgate-process';
import { waitUntil, workerEnvironment } from '../support/recovery';
import { testServicesDir } from '../support/services.fixture';
import { startTestApp, TestApp } from '../support/test-app';
import { startWebhookReceiver, WebhookReceiver } from '../support/webhook-receiver';

jest.setTimeout(120_000);

describe('notifications: a worker killed with SIGKILL between the outbox commit and the send', () => {
  let app: TestApp;
  let http: Server;
  let receiver: WebhookReceiver;
  let db: Client;
  const workers: LabgateProcess[] = [];

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    app = await startTestApp({
      SERVICES_DIR: testServicesDir(),
      ROLE: 'api',
      WEBHOOK_ALLOW_PRIVATE: 'true',
      LOCAL_DEVICE: 'false', // the job only needs submitting: its event is what is delivered
    });
    http = app.app.getHttpServer();
    db = new Client({ connectionString: app.config.database.url });
    await db.connect();
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await db?.end();
    await app?.close();
    await receiver?.close();
  });

  const spawnWorker = async () => {
    const worker = new LabgateProcess(
      'worker',
      workerEnvironment(app.config, { WEBHOOK_ALLOW_PRIVATE: 'true', LOCAL_DEVICE: 'false' }),
    );
    workers.push(worker);
    await worker.waitFor(/worker started/);
    return worker;
  };

  it('still delivers, exactly once, from the next worker', async () => {
    const alice = bearer(await mintAccessToken(app, { sub: 'alice' }));
    const hook = await request(http)
      .post('/api/v1/me/webhooks')
      .set(alice)
      .send({ url: receiver.url, events: ['job.submitted'] })
      .expect(201);
    // Deliveries wait in Redis instead of being sent: the first worker dies before sending.
    const queue = app.app.get<Queue>(getQueueToken(QueueName.Notifications));
    await queue.pause();
    const first = await spawnWorker();
    const { id: jobId } = (
      await request(http)
        .post('/api/v1/jobs')
        .set(alice)
        .send({ service: 'float-add', inputs: { a: 1, b: 1 } })
        .expect(201)
    ).body;
    const delivery = await waitUntil(
      'the first worker to commit the delivery',
      async () =>
        (
          await db.query<{ id: string; state: string }>(
            `select id, state from notification_delivery where webhook_id = $1`,
            [hook.body.id],
          )
        ).rows[0] ?? false,
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    expect(delivery.state).toBe('pending');
    first.child.kill('SIGKILL');
    await first.exited;
    expect(receiver.requests).toHaveLength(0);

    await queue.resume();
    await spawnWorker();
    await receiver.waitForRequests(1, 30_000);
    await waitUntil(
      'the delivery to be marked sent',
      async () =>
        (await db.query(`select state from notification_delivery where id = $1`, [delivery.id]))
          .rows[0].state === 'sent',
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    const [sent] = receiver.requests;
    expect(sent.headers['x-labgate-delivery']).toBe(delivery.id);
    expect(JSON.parse(sent.body)).toMatchObject({
      event: 'job.submitted',
      subject: { id: jobId },
    });
    // One delivery row for the event, one request: the dispatcher of the second worker read
    // the outbox again from its cursor and added nothing.
    const rows = await db.query(
      `select count(*)::int as n from notification_delivery where webhook_id = $1`,
      [hook.body.id],
    );
    expect(rows.rows[0].n).toBe(1);
    expect(receiver.requests).toHaveLength(1);
  });

  it('sends a delivery the dead worker committed but never handed to Redis, soon after the next worker starts', async () => {
    // The kill can land between the commit and the add to Bull; made certain here by
    // removing the queued send. The next worker finds the delivery once the grace for
    // deliveries on their way into Redis (10 s) has passed, not a whole reconcile period
    // (30 s) later.
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    const bob = bearer(await mintAccessToken(app, { sub: 'bob' }));
    const hook = await request(http)
      .post('/api/v1/me/webhooks')
      .set(bob)
      .send({ url: receiver.url, events: ['job.submitted'] })
      .expect(201);
    const queue = app.app.get<Queue>(getQueueToken(QueueName.Notifications));
    await queue.pause();
    const first = await spawnWorker();
    await request(http)
      .post('/api/v1/jobs')
      .set(bob)
      .send({ service: 'float-add', inputs: { a: 2, b: 2 } })
      .expect(201);
    const delivery = await waitUntil(
      'the first worker to commit the delivery',
      async () =>
        (
          await db.query<{ id: string }>(
            `select id from notification_delivery where webhook_id = $1`,
            [hook.body.id],
          )
        ).rows[0] ?? false,
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    first.child.kill('SIGKILL');
    await first.exited;
    const queued = await waitUntil(
      'the send to be queued',
      async () => (await queue.getJob(delivery.id)) ?? false,
      {
        timeoutMs: 5_000,
      },
    ).catch(() => undefined);
    await queued?.remove();
    expect(await queue.getJob(delivery.id)).toBeNull();
    const before = receiver.requests.length;

    await queue.resume();
    await spawnWorker();
    // Within 25 s of its start: the grace and a little, well short of the 30 s period.
    await receiver.waitForRequests(before + 1, 25_000);
    expect(receiver.requests[before].headers['x-labgate-delivery']).toBe(delivery.id);
  });
});
