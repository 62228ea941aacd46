import type { Server } from 'node:http';
import { getQueueToken } from '@nestjs/bull';
import type { Queue } from 'bull';
import { Client } from 'pg';
import request from 'supertest';
import { DeliveryProcessor } from '../../src/notifications/delivery.processor';
import { NotificationDispatcher } from '../../src/notifications/notification-dispatcher';
import { verifySignature } from '../../src/notifications/channels/webhook-sender';
import { QueueName } from '../../src/queue/queue.constants';
import { bearer, mintAccessToken } from '../support/auth';
import { createDevice, heartbeat, roleHeaders, ROLE_ENV } from '../support/devices';
import { DeviceWatch } from '../../src/jobs/scheduling/device-watch';
import { waitUntil } from '../support/recovery';
import { testServicesDir } from '../support/services.fixture';
import { startSmtpServer } from '../support/smtp';
import { startTestApp, TestApp } from '../support/test-app';
import { startWebhookReceiver } from '../support/webhook-receiver';

type Smtp = Awaited<ReturnType<typeof startSmtpServer>>;
type Receiver = Awaited<ReturnType<typeof startWebhookReceiver>>;

describe('notifications: outbox → mail, webhooks, in-app', () => {
  let app: TestApp;
  let http: Server;
  let smtp: Smtp;
  let receiver: Receiver;
  let alice: Record<string, string>;
  let db: Client;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    receiver = await startWebhookReceiver();
    app = await startTestApp({
      SERVICES_DIR: testServicesDir(),
      ROLE: 'all',
      ...ROLE_ENV,
      SMTP_URL: smtp.url,
      WEBHOOK_ALLOW_PRIVATE: 'true',
    });
    http = app.app.getHttpServer();
    alice = bearer(
      await mintAccessToken(app, {
        sub: 'alice',
        email: 'alice@example.org',
        exp: Math.floor(Date.now() / 1000) + 3600,
      }),
    );
    db = new Client({ connectionString: app.config.database.url });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await app?.close();
    await smtp?.close();
    await receiver?.close();
  });

  const base = () => receiver.url.replace(/\/hook$/, '');

  const settled = () =>
    waitUntil(
      'every delivery to be sent or failed',
      async () => {
        await app.app.get(NotificationDispatcher).drain();
        const { rows } = await db.query(
          `select count(*)::int as n from notification_delivery where state = 'pending'`,
        );
        return rows[0].n === 0;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );

  const runJob = async (inputs: Record<string, number>) => {
    const { id } = (
      await request(http)
        .post('/api/v1/jobs')
        .set(alice)
        .send({ service: 'float-add', inputs })
        .expect(201)
    ).body;
    await waitUntil(
      'the job to succeed',
      async () =>
        (await request(http).get(`/api/v1/jobs/${id}`).set(alice)).body.status === 'succeeded',
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    return id as string;
  };

  it('mails, signs a webhook (retried after a 500, once after success) and lists in-app', async () => {
    const hook = await request(http)
      .post('/api/v1/me/webhooks')
      .set(alice)
      .send({ url: `${base()}/hook`, events: ['job.succeeded'] })
      .expect(201);
    expect(hook.body.secret).toMatch(/^lgw_/);
    receiver.respondWith(500, 200);

    const jobId = await runJob({ a: 1, b: 2 });
    await smtp.waitForMessages(1);
    await receiver.waitForRequests(2);
    await settled();

    // Mail: only the success (submitted and started are in-app only by default).
    expect(smtp.messages).toHaveLength(1);
    const mail = smtp.messages[0];
    expect(mail.subject).toMatch(/float-add.*succeeded/);
    expect(mail.text).toContain(`/api/v1/jobs/${jobId}`);
    expect(mail.text).toContain(`/api/v1/jobs/${jobId}/result`);

    // Webhook: a 500, then the same delivery again, signed with the secret shown once.
    const [first, second] = receiver.requests;
    expect(first.headers['x-labgate-delivery']).toBe(second.headers['x-labgate-delivery']);
    expect(
      verifySignature(
        hook.body.secret,
        second.headers['x-labgate-signature'] as string,
        second.body,
      ),
    ).toBe(true);
    expect(JSON.parse(second.body)).toMatchObject({
      event: 'job.succeeded',
      subject: { type: 'job', id: jobId },
    });
    const deliveries = await request(http)
      .get(`/api/v1/me/webhooks/${hook.body.id}/deliveries`)
      .set(alice)
      .expect(200);
    expect(deliveries.body).toEqual([
      expect.objectContaining({ state: 'sent', attempts: 2, lastStatus: 200 }),
    ]);
    // Nothing sent twice: reading the outbox and reconciling again adds no request or mail.
    await app.app.get(NotificationDispatcher).drain();
    await app.app.get(NotificationDispatcher).reconcile();
    await app.app.get(DeliveryProcessor).deliver(deliveries.body[0].id);
    expect(receiver.requests).toHaveLength(2);
    expect(smtp.messages).toHaveLength(1);

    // In-app: submitted, started, succeeded; unread first; marking read.
    const inbox = await request(http).get('/api/v1/me/notifications').set(alice).expect(200);
    expect(inbox.body.unread).toBe(3);
    expect(inbox.body.items.map((n: { event: string }) => n.event).sort()).toEqual([
      'job.started',
      'job.submitted',
      'job.succeeded',
    ]);
    await request(http)
      .post('/api/v1/me/notifications/read')
      .set(alice)
      .send({ ids: [inbox.body.items[0].id] })
      .expect(200, { updated: 1 });
    const after = await request(http).get('/api/v1/me/notifications').set(alice).expect(200);
    expect(after.body.unread).toBe(2);
    expect(after.body.items[2].readAt).toBeDefined(); // read ones come last
  }, 60_000);

  it('follows preferences: no mail for an event switched off', async () => {
    await request(http)
      .put('/api/v1/me/notification-preferences')
      .set(alice)
      .send({ preferences: [{ event: 'job.succeeded', channel: 'email', enabled: false }] })
      .expect(200);
    const before = smtp.messages.length;
    await runJob({ a: 2, b: 2 });
    await settled();
    expect(smtp.messages.length).toBe(before);
    const prefs = await request(http).get('/api/v1/me/notification-preferences').set(alice);
    expect(prefs.body.preferences).toContainEqual({
      event: 'job.succeeded',
      channel: 'email',
      enabled: false,
    });
  }, 60_000);

  it('delivers exactly once when the queued delivery was lost after the outbox commit', async () => {
    const queue = app.app.get<Queue>(getQueueToken(QueueName.Notifications));
    const hook = await request(http)
      .post('/api/v1/me/webhooks')
      .set(alice)
      .send({ url: `${base()}/lost`, events: ['job.submitted'] })
      .expect(201);
    const seen = receiver.requests.length;
    await queue.pause(); // as if the worker died right after committing the deliveries
    await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .send({ service: 'float-add', inputs: { a: 0, b: 0 } })
      .expect(201);
    await app.app.get(NotificationDispatcher).drain();
    const { rows } = await db.query(
      `select id from notification_delivery where webhook_id = $1 and state = 'pending'`,
      [hook.body.id],
    );
    expect(rows).toHaveLength(1);
    await queue.empty(); // …and Redis lost what it held
    await db.query(`update notification_delivery set created_at = now() - interval '1 minute'`);
    await queue.resume();
    expect(await app.app.get(NotificationDispatcher).reconcile()).toBeGreaterThanOrEqual(1);
    await settled();
    const lost = receiver.requests.slice(seen).filter((r) => r.url === '/lost');
    expect(lost).toHaveLength(1);
    expect(lost[0].headers['x-labgate-delivery']).toBe(rows[0].id);
  }, 60_000);

  it('tells operators (in-app and mail) when a device goes DOWN and when it is back', async () => {
    const roles = await roleHeaders(app);
    await request(http).get('/api/v1/me').set(roles.operator).expect(200); // the operator exists
    const device = await createDevice(http, roles.admin, { services: ['echo'] });
    await heartbeat(http, device.token);
    await db.query(
      `update device set last_heartbeat_at = now() - interval '1 hour' where id = $1`,
      [device.id],
    );
    await app.app.get(DeviceWatch).sweep();
    await heartbeat(http, device.token);
    await settled();
    const inbox = await request(http).get('/api/v1/me/notifications').set(roles.operator);
    expect(inbox.body.items.map((n: { event: string }) => n.event).sort()).toEqual([
      'device.down',
      'device.up',
    ]);
    expect(inbox.body.items[0].body).toContain(device.body.name);
    // A plain user hears nothing of devices.
    const mine = await request(http).get('/api/v1/me/notifications').set(roles.user);
    expect(mine.body.items.filter((n: { event: string }) => n.event.startsWith('device.'))).toEqual(
      [],
    );
    const mails = smtp.messages.filter((m) => m.subject?.includes(device.body.name as string));
    expect(mails.length).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('tells the owner of a claimed result, and both sides of the decision', async () => {
    const roles = await roleHeaders(app);
    const result = await request(http)
      .post('/api/v1/results')
      .set(roles.user)
      .send({
        service: 'float-add',
        metrics: { sum: 3 },
        executedAt: new Date(Date.now() - 60_000).toISOString(),
        visibility: 'institution',
      })
      .expect(201);
    const claim = await request(http)
      .post(`/api/v1/results/${result.body.id}/claim`)
      .set(roles.other)
      .send({ reason: 'copied from my run' })
      .expect(201);
    await request(http)
      .post(`/api/v1/admin/claims/${claim.body.id}/approve`)
      .set(roles.admin)
      .send({})
      .expect(200);
    await settled();
    const events = async (who: Record<string, string>) =>
      (await request(http).get('/api/v1/me/notifications').set(who)).body.items
        .map((n: { event: string }) => n.event)
        .filter((e: string) => e.startsWith('result.') || e.startsWith('claim.'))
        .sort();
    expect(await events(roles.user)).toEqual(['claim.decided', 'result.claimed']);
    expect(await events(roles.other)).toEqual(['claim.decided']);
  }, 60_000);

  it('refuses webhook URLs on private addresses unless allowed, with a 400 problem', async () => {
    const strict = await startTestApp({ SERVICES_DIR: testServicesDir(), ROLE: 'api' });
    try {
      const who = bearer(await mintAccessToken(strict, { sub: 'bob' }));
      for (const url of ['http://127.0.0.1:9/x', 'http://10.1.2.3/x', 'http://169.254.169.254/']) {
        const res = await request(strict.app.getHttpServer())
          .post('/api/v1/me/webhooks')
          .set(who)
          .send({ url, events: ['job.failed'] })
          .expect(400);
        expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
        expect(res.body.errors[0].field).toBe('url');
      }
      await request(strict.app.getHttpServer())
        .post('/api/v1/me/webhooks')
        .set(who)
        .send({ url: 'https://example.org/x', events: ['nope'] })
        .expect(400);
    } finally {
      await strict.close();
    }
  });
});
