import { NOTIFICATION_EVENTS, NotificationEvent, NotificationMessage } from './events';
import { escapeHtml, renderInApp, renderMail } from './templates';

const JOB = 'https://labgate.example.org/jobs/0b6f';
const RESULT = 'https://labgate.example.org/jobs/0b6f/result';
const DEVICE = 'https://labgate.example.org/devices/gpu-1';

function message(
  event: NotificationEvent,
  overrides: Partial<NotificationMessage> = {},
): NotificationMessage {
  const type = event.split('.')[0] as NotificationMessage['subject']['type'];
  return {
    event,
    key: `job_event:${event}`,
    at: '2025-03-01T12:00:00.000Z',
    subject: { type: type === 'job' || type === 'device' ? type : 'result', id: '0b6f' },
    data: {
      service: 'float-add',
      deviceName: 'gpu-1',
      reason: 'exit code 3',
      claimant: 'Ann Lee',
      decision: 'approved',
    },
    links: { job: JOB, result: RESULT, device: DEVICE },
    ...overrides,
  };
}

describe(renderMail.name, () => {
  it.each([
    ['job.submitted', '[labgate] float-add job submitted'],
    ['job.started', '[labgate] float-add job started'],
    ['job.succeeded', '[labgate] float-add job succeeded'],
    ['job.failed', '[labgate] float-add job failed'],
    ['job.cancelled', '[labgate] float-add job cancelled'],
    ['device.down', '[labgate] device gpu-1 is down'],
    ['device.up', '[labgate] device gpu-1 is up again'],
    ['result.claimed', '[labgate] Ann Lee claims a float-add result'],
    ['claim.decided', '[labgate] your claim on a float-add result was approved'],
  ] as const)('renders %s with subject "%s"', (event, subject) => {
    const mail = renderMail(message(event), 'Bea');
    expect(mail.subject).toBe(subject);
    expect(mail.text).toMatch(/^Hello Bea,\n/);
    expect(mail.html).toContain('<p>Hello Bea,</p>');
    const link = event.startsWith('device.') ? DEVICE : event.startsWith('job.') ? JOB : RESULT;
    expect(mail.text).toContain(link);
    expect(mail.html).toContain(`href="${link}"`);
  });

  it('covers every event of the vocabulary', () => {
    for (const event of NOTIFICATION_EVENTS) {
      expect(renderMail(message(event)).subject).toMatch(/^\[labgate\] \S/);
    }
  });

  it('links the result of a succeeded job and lists its metrics', () => {
    const mail = renderMail(
      message('job.succeeded', {
        data: { service: 'float-add', metrics: { sum: 3.5, tags: ['a'] } },
      }),
    );
    expect(mail.text).toContain(`Download the result: ${RESULT}`);
    expect(mail.text).toContain(`View the job: ${JOB}`);
    expect(mail.text).toContain('Metric sum: 3.5');
    expect(mail.text).toContain('Metric tags: ["a"]');
    expect(mail.html).toContain(`<a href="${RESULT}">Download the result</a>`);
  });

  it('does not link a result for jobs that did not succeed', () => {
    for (const event of ['job.submitted', 'job.started', 'job.failed', 'job.cancelled'] as const) {
      const mail = renderMail(message(event));
      expect(mail.text).not.toContain(RESULT);
      expect(mail.html).not.toContain(RESULT);
    }
  });

  it('gives the reason of a failed job, and says when there is none', () => {
    expect(renderMail(message('job.failed')).text).toContain('Reason: exit code 3');
    const bare = renderMail(message('job.failed', { data: { service: 'float-add' } }));
    expect(bare.text).toContain('Reason: no reason was given');
  });

  it('escapes every interpolated value in the HTML part', () => {
    const evil = '<script>alert("x")</script>';
    const mail = renderMail(
      message('job.failed', {
        data: { service: `<b>svc</b>`, reason: evil, deviceName: `"'&` },
        links: { job: `https://labgate.example.org/jobs/1?a=1&b="><script>` },
      }),
      '<img src=x onerror=alert(1)>',
    );
    expect(mail.html).not.toMatch(/<script|<b>svc|<img/);
    expect(mail.html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(mail.html).toContain('&lt;b&gt;svc&lt;/b&gt;');
    expect(mail.html).toContain('&quot;&#39;&amp;');
    expect(mail.html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(mail.html).toContain(
      'href="https://labgate.example.org/jobs/1?a=1&amp;b=&quot;&gt;&lt;script&gt;"',
    );
    // The plain text part shows values as they are.
    expect(mail.text).toContain(`Reason: ${evil}`);
  });

  it('keeps line breaks out of the subject', () => {
    const mail = renderMail(
      message('job.failed', { data: { service: 'a\r\nBcc: x@example.org' } }),
    );
    expect(mail.subject).toBe('[labgate] a Bcc: x@example.org job failed');
  });

  it('drops links that are not http(s)', () => {
    const mail = renderMail(message('job.submitted', { links: { job: 'javascript:alert(1)' } }));
    expect(mail.html).not.toContain('javascript:');
    expect(mail.text).not.toContain('javascript:');
  });

  it('greets without a name when none is known', () => {
    expect(renderMail(message('device.up')).text).toMatch(/^Hello,\n/);
  });

  it('escapes &, <, >, " and \'', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe(
      '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;',
    );
  });
});

describe(renderInApp.name, () => {
  it('gives a title without prefix, the details and the most useful link', () => {
    const note = renderInApp(message('job.succeeded'));
    expect(note.title).toBe('float-add job succeeded');
    expect(note.body).toBe(
      'Your float-add job succeeded.\nJob: 0b6f\nService: float-add\nDevice: gpu-1',
    );
    expect(note.link).toBe(RESULT);
    expect(renderInApp(message('job.failed', { links: { job: JOB } })).link).toBe(JOB);
    expect(renderInApp(message('device.down', { links: { device: DEVICE } })).link).toBe(DEVICE);
  });
});
