import { NotificationEvent, NotificationMessage } from './events';

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

/** What one event says, before it is written as text or HTML. */
interface MailContent {
  subject: string;
  intro: string;
  details: Array<[label: string, value: string]>;
  links: Array<[label: string, url: string | undefined]>;
}

const SUBJECT_PREFIX = '[labgate]';
const MAX_METRICS = 20;
const MAX_VALUE_CHARS = 500;

/** Renders one notification as mail. Every value from `message` is escaped in the HTML part. */
export function renderMail(message: NotificationMessage, recipientName?: string): RenderedMail {
  const content = CONTENT[message.event](message);
  const greeting = recipientName?.trim() ? `Hello ${oneLine(recipientName)},` : 'Hello,';
  const links = content.links.filter((link): link is [string, string] => isWebUrl(link[1]));
  return {
    subject: oneLine(`${SUBJECT_PREFIX} ${content.subject}`).slice(0, 200),
    text: renderText(greeting, content, links),
    html: renderHtml(greeting, content, links),
  };
}

export interface RenderedInApp {
  title: string;
  /** Plain text: what happened and its details, without greeting, links or footer. */
  body: string;
  /** The most useful page: the result, else the job, else the device. */
  link?: string;
}

/** Renders one notification for the in-app list (same words as the mail). */
export function renderInApp(message: NotificationMessage): RenderedInApp {
  const content = CONTENT[message.event](message);
  const body = [content.intro, ...content.details.map(([label, value]) => `${label}: ${value}`)];
  const { result, job, device } = message.links;
  return {
    title: oneLine(content.subject).slice(0, 200),
    body: body.join('\n'),
    link: [result, job, device].find(isWebUrl),
  };
}

const CONTENT: Record<NotificationEvent, (m: NotificationMessage) => MailContent> = {
  'job.submitted': (m) =>
    jobContent(m, 'submitted', `${yourJob(m)} was submitted and waits for a free device.`),
  'job.started': (m) => {
    const device = text(m.data.deviceName);
    return jobContent(m, 'started', `${yourJob(m)} started${device ? ` on ${device}` : ''}.`);
  },
  'job.succeeded': (m) => {
    const content = jobContent(m, 'succeeded', `${yourJob(m)} succeeded.`);
    content.details.push(...metricDetails(m.data.metrics));
    content.links.push(['Download the result', m.links.result]);
    return content;
  },
  'job.failed': (m) => {
    const content = jobContent(m, 'failed', `${yourJob(m)} failed.`);
    content.details.push(['Reason', text(m.data.reason) ?? 'no reason was given']);
    return content;
  },
  'job.cancelled': (m) => {
    const content = jobContent(m, 'cancelled', `${yourJob(m)} was cancelled.`);
    const reason = text(m.data.reason);
    if (reason) {
      content.details.push(['Reason', reason]);
    }
    return content;
  },
  'device.down': (m) => {
    const name = deviceName(m);
    const lastSeen = text(m.data.lastSeenAt);
    return {
      subject: `device ${name} is down`,
      intro:
        `Device ${name} stopped reporting${lastSeen ? ` (last heartbeat ${lastSeen})` : ''}. ` +
        'It is shown as DOWN; its waiting jobs go back to the queue.',
      details: [['Device', name], ...optional('Reason', m.data.reason)],
      links: [['View the device', m.links.device]],
    };
  },
  'device.up': (m) => {
    const name = deviceName(m);
    return {
      subject: `device ${name} is up again`,
      intro: `Device ${name} reports again and takes jobs.`,
      details: [['Device', name]],
      links: [['View the device', m.links.device]],
    };
  },
  'result.claimed': (m) => {
    const claimant = text(m.data.claimant) ?? 'A user';
    const what = resultLabel(m);
    return {
      subject: `${claimant} claims ${what}`,
      intro: `${claimant} claims ${what}. The claim waits for a decision.`,
      details: [['Result', m.subject.id], ...optional('Comment', m.data.comment)],
      links: [
        ['View the result', m.links.result],
        ['View the job', m.links.job],
      ],
    };
  },
  'claim.decided': (m) => {
    const decision = text(m.data.decision) ?? 'decided';
    const what = resultLabel(m);
    return {
      subject: `your claim on ${what} was ${decision}`,
      intro: `Your claim on ${what} was ${decision}.`,
      details: [['Decision', decision], ...optional('Comment', m.data.comment)],
      links: [
        ['View the result', m.links.result],
        ['View the job', m.links.job],
      ],
    };
  },
};

function jobContent(m: NotificationMessage, verb: string, intro: string): MailContent {
  const service = text(m.data.service);
  return {
    subject: service ? `${service} job ${verb}` : `job ${verb}`,
    intro,
    details: [
      ['Job', m.subject.id],
      ...optional('Service', m.data.service),
      ...optional('Device', m.data.deviceName),
    ],
    links: [['View the job', m.links.job]],
  };
}

function yourJob(m: NotificationMessage): string {
  const service = text(m.data.service);
  return service ? `Your ${service} job` : 'Your job';
}

function deviceName(m: NotificationMessage): string {
  return text(m.data.deviceName) ?? m.subject.id;
}

function resultLabel(m: NotificationMessage): string {
  const service = text(m.data.service);
  return service ? `a ${service} result` : 'a result';
}

function metricDetails(metrics: unknown): Array<[string, string]> {
  if (!metrics || typeof metrics !== 'object' || Array.isArray(metrics)) {
    return [];
  }
  const entries = Object.entries(metrics as Record<string, unknown>);
  const shown = entries
    .slice(0, MAX_METRICS)
    .map(([name, value]): [string, string] => [
      `Metric ${name}`,
      text(value) ?? (JSON.stringify(value) ?? '').slice(0, MAX_VALUE_CHARS),
    ]);
  if (entries.length > MAX_METRICS) {
    shown.push(['Metrics', `${entries.length - MAX_METRICS} more on the job page`]);
  }
  return shown;
}

function optional(label: string, value: unknown): Array<[string, string]> {
  const shown = text(value);
  return shown ? [[label, shown]] : [];
}

/** A printable form of a scalar, or undefined for missing, empty and structured values. */
function text(value: unknown): string | undefined {
  if (typeof value === 'string') {
    return value.trim() === '' ? undefined : value.slice(0, MAX_VALUE_CHARS);
  }
  if (typeof value === 'number' || typeof value === 'boolean') {
    return String(value);
  }
  return undefined;
}

/** Values come from users (service names, reasons): keep them from breaking lines or headers. */
function oneLine(value: string): string {
  return value.replace(/[\r\n\t\u2028\u2029]+/g, ' ').trim();
}

function isWebUrl(value: string | undefined): boolean {
  if (!value) {
    return false;
  }
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

function renderText(greeting: string, content: MailContent, links: Array<[string, string]>) {
  const lines = [greeting, '', content.intro, ''];
  for (const [label, value] of content.details) {
    lines.push(`${label}: ${value}`);
  }
  if (links.length > 0) {
    lines.push('');
    for (const [label, url] of links) {
      lines.push(`${label}: ${url}`);
    }
  }
  lines.push('', '-- ', FOOTER);
  return lines.join('\n') + '\n';
}

function renderHtml(greeting: string, content: MailContent, links: Array<[string, string]>) {
  const rows = content.details
    .map(
      ([label, value]) =>
        `<tr><th align="left" style="padding-right:1em">${escapeHtml(label)}</th>` +
        `<td>${escapeHtml(value).replace(/\n/g, '<br>')}</td></tr>`,
    )
    .join('');
  const anchors = links
    .map(([label, url]) => `<p><a href="${escapeHtml(url)}">${escapeHtml(label)}</a></p>`)
    .join('');
  return (
    '<!doctype html><html><body style="font-family:sans-serif">' +
    `<p>${escapeHtml(greeting)}</p>` +
    `<p>${escapeHtml(content.intro)}</p>` +
    (rows ? `<table>${rows}</table>` : '') +
    anchors +
    `<p style="color:#666;font-size:small">${escapeHtml(FOOTER)}</p>` +
    '</body></html>'
  );
}

const FOOTER = 'You receive this mail because of your labgate notification settings.';

export function escapeHtml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}
