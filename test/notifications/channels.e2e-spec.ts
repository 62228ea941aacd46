import { LookupAddress } from 'node:dns';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppConfig, loadConfig } from '../../src/config';
import { NotificationMessage } from '../../src/notifications/channels/events';
import {
  MAIL_OFF_MESSAGE,
  MailDeliveryError,
  Mailer,
} from '../../src/notifications/channels/mailer';
import { renderMail } from '../../src/notifications/channels/templates';
import {
  checkWebhookUrl,
  verifySignature,
  WebhookSender,
} from '../../src/notifications/channels/webhook-sender';
import { parseMail, SmtpTestServer, startSmtpServer } from '../support/smtp';
import { startWebhookReceiver, WebhookReceiver } from '../support/webhook-receiver';

const PUBLIC_URL = 'https://labgate.example.org';
const JOB_LINK = `${PUBLIC_URL}/jobs/6d1c`;
const RESULT_LINK = `${PUBLIC_URL}/api/v1/jobs/6d1c/result`;

const succeeded: NotificationMessage = {
  event: 'job.succeeded',
  key: 'job_event:42',
  at: '2025-03-01T12:00:00.000Z',
  subject: { type: 'job', id: '6d1c' },
  data: { service: 'float-add', metrics: { sum: 3.5 } },
  links: { job: JOB_LINK, result: RESULT_LINK },
};

function config(varDir: string, env: Record<string, string> = {}): AppConfig {
  return loadConfig({
    NODE_ENV: 'test',
    VAR_DIR: varDir,
    PUBLIC_URL,
    MAIL_FROM: 'labgate <noreply@labgate.example.org>',
    ...env,
  });
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function rejection(work: Promise<unknown>): Promise<MailDeliveryError> {
  const error: unknown = await work.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(MailDeliveryError);
  return error as MailDeliveryError;
}

describe(Mailer.name, () => {
  let varDir: string;
  let smtp: SmtpTestServer;
  let mailer: Mailer | undefined;

  beforeEach(async () => {
    varDir = await mkdtemp(join(tmpdir(), 'labgate-mail-'));
    smtp = await startSmtpServer();
  });

  afterEach(async () => {
    mailer?.close();
    mailer = undefined;
    await smtp.close();
    await rm(varDir, { recursive: true, force: true });
  });

  it('sends a rendered notification through SMTP with a Message-ID derived from its key', async () => {
    mailer = new Mailer(config(varDir, { SMTP_URL: smtp.url }));
    const receipt = await mailer.send({
      to: 'ann@example.org',
      ...renderMail(succeeded, 'Ann'),
      messageId: 'delivery-42',
      headers: { 'X-Labgate-Event': 'job.succeeded' },
    });

    const [mail] = await smtp.waitForMessages(1);
    expect(receipt).toEqual({ delivered: 'smtp', id: '<labgate.delivery-42@labgate.example.org>' });
    expect(mail.messageId).toBe('<labgate.delivery-42@labgate.example.org>');
    expect(mail.envelope).toEqual({ from: 'noreply@labgate.example.org', to: ['ann@example.org'] });
    expect(mail.from).toBe('labgate <noreply@labgate.example.org>');
    expect(mail.to).toBe('ann@example.org');
    expect(mail.subject).toBe('[labgate] float-add job succeeded');
    expect(mail.headers.get('auto-submitted')).toEqual(['auto-generated']);
    expect(mail.headers.get('x-labgate-event')).toEqual(['job.succeeded']);
    expect(mail.text).toContain('Hello Ann,');
    expect(mail.text).toContain(`View the job: ${JOB_LINK}`);
    expect(mail.text).toContain(`Download the result: ${RESULT_LINK}`);
    expect(mail.html).toContain(`<a href="${RESULT_LINK}">Download the result</a>`);
  });

  it('logs in with the credentials of SMTP_URL', async () => {
    await smtp.close();
    smtp = await startSmtpServer({ auth: { user: 'labgate', pass: 'p@ss:w/rd' } });
    mailer = new Mailer(config(varDir, { SMTP_URL: smtp.url }));
    await mailer.send({ to: 'ann@example.org', ...renderMail(succeeded), messageId: 'd1' });
    const [mail] = await smtp.waitForMessages(1);
    expect(mail.user).toBe('labgate');
  });

  it('rejects a wrong SMTP password as permanent', async () => {
    await smtp.close();
    smtp = await startSmtpServer({ auth: { user: 'labgate', pass: 'right' } });
    const url = smtp.url.replace(':right@', ':wrong@');
    mailer = new Mailer(config(varDir, { SMTP_URL: url }));
    const error = await rejection(
      mailer.send({ to: 'ann@example.org', ...renderMail(succeeded), messageId: 'd1' }),
    );
    expect(error).toMatchObject({ permanent: true, responseCode: 535 });
    expect(smtp.messages).toHaveLength(0);
  });

  it('rejects a 451 as retryable, and the retry arrives with the same Message-ID', async () => {
    mailer = new Mailer(config(varDir, { SMTP_URL: smtp.url }));
    const mail = { to: 'ann@example.org', ...renderMail(succeeded), messageId: 'delivery-7' };
    smtp.failNext(451);

    const error = await rejection(mailer.send(mail));
    expect(error).toMatchObject({ permanent: false, responseCode: 451 });
    expect(smtp.messages).toHaveLength(0);

    await mailer.send(mail);
    const [received] = await smtp.waitForMessages(1);
    expect(received.messageId).toBe('<labgate.delivery-7@labgate.example.org>');
  });

  it('rejects a 550 as permanent', async () => {
    mailer = new Mailer(config(varDir, { SMTP_URL: smtp.url }));
    smtp.failNext(550, 'No such user here');
    const error = await rejection(
      mailer.send({ to: 'nobody@example.org', ...renderMail(succeeded), messageId: 'd2' }),
    );
    expect(error).toMatchObject({ permanent: true, responseCode: 550 });
    expect(error.message).toContain('No such user here');
  });

  it('rejects a refused connection as retryable', async () => {
    mailer = new Mailer(config(varDir, { SMTP_URL: `smtp://127.0.0.1:${await closedPort()}` }));
    const error = await rejection(
      mailer.send({ to: 'ann@example.org', ...renderMail(succeeded), messageId: 'd3' }),
    );
    expect(error.permanent).toBe(false);
    expect(error.message).toMatch(/ECONNREFUSED/);
  });

  it('writes an .eml file under VAR_DIR/mail in development when SMTP_URL is unset', async () => {
    const logged: string[] = [];
    mailer = new Mailer(config(varDir, { NODE_ENV: 'development' }), {
      log: (line: string) => logged.push(line),
    });
    expect(mailer.mode).toBe('file');
    const receipt = await mailer.send({
      to: 'ann@example.org',
      ...renderMail(succeeded, 'Ann'),
      messageId: 'delivery-9',
    });

    const path = join(varDir, 'mail', 'labgate.delivery-9.eml');
    expect(receipt).toEqual({
      delivered: 'file',
      id: '<labgate.delivery-9@labgate.example.org>',
      path,
    });
    expect(await readdir(join(varDir, 'mail'))).toEqual(['labgate.delivery-9.eml']);
    const raw = await readFile(path, 'utf8');
    expect(raw).not.toContain('\r\n');
    const mail = parseMail(raw);
    expect(mail.messageId).toBe('<labgate.delivery-9@labgate.example.org>');
    expect(mail.subject).toBe('[labgate] float-add job succeeded');
    expect(mail.to).toBe('ann@example.org');
    expect(mail.text).toContain(`Download the result: ${RESULT_LINK}`);
    expect(mail.html).toContain(`href="${JOB_LINK}"`);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain(path);
    expect(smtp.messages).toHaveLength(0);
  });

  it('refuses to send in production when SMTP_URL is unset', async () => {
    mailer = new Mailer(config(varDir).with({ nodeEnv: 'production' }));
    expect(mailer.mode).toBe('off');
    const error = await rejection(
      mailer.send({ to: 'ann@example.org', ...renderMail(succeeded), messageId: 'd4' }),
    );
    expect(error.message).toBe(MAIL_OFF_MESSAGE);
    expect(error.permanent).toBe(true);
    await expect(readdir(join(varDir, 'mail'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe(WebhookSender.name, () => {
  const secret = 'whsec_e2e';
  let receiver: WebhookReceiver;

  beforeEach(async () => {
    receiver = await startWebhookReceiver();
  });

  afterEach(async () => {
    await receiver.close();
  });

  function request(url = receiver.url, deliveryId = 'd-1') {
    return {
      url,
      secret,
      body: { id: deliveryId, ...succeeded },
      deliveryId,
      event: 'job.succeeded',
    };
  }

  it('POSTs signed JSON that the receiver can verify', async () => {
    const result = await new WebhookSender(true).send(request());

    const [received] = await receiver.waitForRequests(1);
    expect(result).toMatchObject({ ok: true, status: 200, retryable: false });
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect(received.method).toBe('POST');
    expect(received.url).toBe('/hook');
    expect(received.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': 'labgate-webhooks',
      'x-labgate-event': 'job.succeeded',
      'x-labgate-delivery': 'd-1',
    });
    expect(JSON.parse(received.body)).toEqual({ id: 'd-1', ...succeeded });

    const signature = received.headers['x-labgate-signature'] as string;
    expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature(secret, signature, received.rawBody)).toBe(true);
    expect(
      verifySignature(secret, signature, received.body.replace('float-add', 'float-sub')),
    ).toBe(false);
    expect(verifySignature('another secret', signature, received.rawBody)).toBe(false);
  });

  it('reports a 500 as retryable, and the retry carries the same delivery id', async () => {
    receiver.respondWith({ status: 500, body: 'database is down' }, 200);
    const sender = new WebhookSender(true);

    const first = await sender.send(request());
    expect(first).toMatchObject({ ok: false, status: 500, retryable: true });
    expect(first.error).toBe('the receiver answered 500: database is down');

    const second = await sender.send(request());
    expect(second).toMatchObject({ ok: true, status: 200 });
    const requests = await receiver.waitForRequests(2);
    expect(requests.map((r) => r.headers['x-labgate-delivery'])).toEqual(['d-1', 'd-1']);
  });

  it.each([
    [404, false],
    [400, false],
    [410, false],
    [408, true],
    [429, true],
    [503, true],
  ])('reports a %i as retryable: %p', async (status, retryable) => {
    receiver.respondWith(status);
    const result = await new WebhookSender(true).send(request());
    expect(result).toMatchObject({ ok: false, status, retryable });
  });

  it('does not follow a redirect', async () => {
    receiver.respondWith({ status: 302, headers: { Location: 'http://169.254.169.254/' } });
    const result = await new WebhookSender(true).send(request());
    expect(result).toMatchObject({ ok: false, status: 302, retryable: false });
    expect(result.error).toContain('redirects are not followed');
    expect(receiver.requests).toHaveLength(1);
  });

  it('gives up on a slow receiver after the timeout, as retryable', async () => {
    receiver.respondWith({ status: 200, delayMs: 20_000 });
    const result = await new WebhookSender(true, 300).send(request());
    expect(result).toMatchObject({ ok: false, retryable: true });
    expect(result.status).toBeUndefined();
    expect(result.error).toBe('timed out after 300 ms');
    expect(result.durationMs).toBeGreaterThanOrEqual(290);
    expect(result.durationMs).toBeLessThan(5_000);
  });

  it('reports a refused connection as retryable', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/hook`;
    const result = await new WebhookSender(true).send(request(url));
    expect(result).toMatchObject({ ok: false, retryable: true });
    expect(result.error).toMatch(/ECONNREFUSED/);
  });

  it('reports a request Node cannot send as not retryable', async () => {
    const result = await new WebhookSender(true).send({
      ...request(),
      deliveryId: 'd-1\r\nX-Injected: 1',
    });
    expect(result).toMatchObject({ ok: false, retryable: false });
    expect(result.error).toMatch(/ERR_INVALID_CHAR/);
    expect(receiver.requests).toHaveLength(0);
  });

  it('reads a large answer no further than it needs', async () => {
    receiver.respondWith({ status: 200, body: 'x'.repeat(5 * 1024 * 1024) });
    const result = await new WebhookSender(true).send(request());
    expect(result).toMatchObject({ ok: true, status: 200 });
  });

  it('reaches a loopback receiver by name when private targets are allowed', async () => {
    const url = receiver.url.replace('127.0.0.1', 'localhost');
    const result = await new WebhookSender(true).send(request(url));
    expect(result).toMatchObject({ ok: true, status: 200 });
    const [received] = await receiver.waitForRequests(1);
    expect(received.headers.host).toBe(`localhost:${receiver.port}`);
  });

  it('connects to the address it checked, without asking DNS again', async () => {
    // A name that real DNS does not know: only the checked answer can reach the receiver.
    const answers: string[] = [];
    const dns = (hostname: string): Promise<LookupAddress[]> => {
      answers.push(hostname);
      return Promise.resolve([{ address: '127.0.0.1', family: 4 }]);
    };
    const url = `http://hooks.labgate.invalid:${receiver.port}/hook`;
    const result = await new WebhookSender(true, 10_000, dns).send(request(url));

    expect(result).toMatchObject({ ok: true, status: 200 });
    expect(answers).toEqual(['hooks.labgate.invalid']);
    const [received] = await receiver.waitForRequests(1);
    expect(received.headers.host).toBe(`hooks.labgate.invalid:${receiver.port}`);
  });

  it('refuses internal targets when private targets are not allowed', async () => {
    const port = receiver.port;
    const urls = [
      receiver.url,
      `http://127.0.0.1:${port}/hook`,
      `http://localhost:${port}/hook`,
      `http://[::1]:${port}/hook`,
      `http://[::ffff:127.0.0.1]:${port}/hook`,
      `http://10.0.0.1/hook`,
      `http://169.254.169.254/latest/meta-data/`,
      `https://127.0.0.1:${port}/hook`,
      `https://localhost:${port}/hook`,
      `https://[::ffff:127.0.0.1]:${port}/hook`,
      `https://169.254.169.254/latest/meta-data/`,
      'file:///etc/passwd',
      `https://user:secret@hooks.example.org/hook`,
    ];
    const sender = new WebhookSender(false);
    for (const url of urls) {
      const result = await sender.send(request(url));
      expect({ url, ...result }).toMatchObject({ url, ok: false, retryable: false });
      expect(result.error).toMatch(/^refused: /);
      expect(await checkWebhookUrl(url, false)).toBe(result.error?.replace(/^refused: /, ''));
    }
    expect(receiver.requests).toHaveLength(0);
  });

  it('refuses a name that resolves to loopback, even when DNS answered differently before', async () => {
    let calls = 0;
    const rebinding = (): Promise<LookupAddress[]> =>
      Promise.resolve([{ address: calls++ === 0 ? '93.184.216.34' : '127.0.0.1', family: 4 }]);
    // The webhook passed its check when it was saved …
    expect(await checkWebhookUrl('https://rebind.example.org/', false, rebinding)).toBeUndefined();
    // … and is checked again at send time, now that the name points at this host.
    const result = await new WebhookSender(false, 10_000, rebinding).send(
      request(`https://rebind.example.org:${receiver.port}/hook`),
    );
    expect(result).toMatchObject({ ok: false, retryable: false });
    expect(result.error).toBe(
      'refused: rebind.example.org resolves to 127.0.0.1, a loopback address',
    );
    expect(receiver.requests).toHaveLength(0);
  });
});
