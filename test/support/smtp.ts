import { EventEmitter } from 'node:events';
import { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { withTimeout } from '../../src/common/with-timeout';

/** A mail as a test reads it: headers decoded, the text and HTML parts decoded. */
export interface ParsedMail {
  raw: string;
  /** Lower-case header name → every value, unfolded, RFC 2047 words decoded. */
  headers: Map<string, string[]>;
  subject?: string;
  messageId?: string;
  from?: string;
  to?: string;
  text?: string;
  html?: string;
}

export interface ReceivedMail extends ParsedMail {
  envelope: { from: string; to: string[] };
  /** The user that authenticated, when the client did. */
  user?: string;
}

export interface SmtpTestServer {
  /** `smtp://[user:pass@]127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Accepted mail, in order. */
  messages: ReceivedMail[];
  /** Resolves once `count` mails have been accepted. */
  waitForMessages(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  /** Answers the next DATA with this SMTP code (e.g. 451, 550) instead of accepting it. */
  failNext(code: number, message?: string): void;
  close(): Promise<void>;
}

/**
 * A real SMTP server (smtp-server) on loopback. STARTTLS is off, so that clients do not try to
 * upgrade to its self-signed certificate; with `auth`, clients must log in (AUTH PLAIN/LOGIN).
 */
export async function startSmtpServer(
  options: { auth?: { user: string; pass: string } } = {},
): Promise<SmtpTestServer> {
  const messages: ReceivedMail[] = [];
  const failures: Array<{ code: number; message: string }> = [];
  const events = new EventEmitter();
  const { auth } = options;

  const server = new SMTPServer({
    logger: false,
    // Connections a client keeps open (a pool) are cut this soon after close().
    closeTimeout: 500,
    disabledCommands: auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    authOptional: !auth,
    allowInsecureAuth: true,
    onAuth(login, _session, callback) {
      if (auth && login.username === auth.user && login.password === auth.pass) {
        callback(null, { user: login.username });
      } else {
        callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
      }
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const failure = failures.shift();
        if (failure) {
          callback(Object.assign(new Error(failure.message), { responseCode: failure.code }));
          return;
        }
        const envelope = session.envelope;
        messages.push({
          ...parseMail(Buffer.concat(chunks).toString('utf8')),
          envelope: {
            from: envelope.mailFrom ? envelope.mailFrom.address : '',
            to: envelope.rcptTo.map((r) => r.address),
          },
          user: typeof session.user === 'string' ? session.user : undefined,
        });
        events.emit('message');
        callback();
      });
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  const credentials = auth
    ? `${encodeURIComponent(auth.user)}:${encodeURIComponent(auth.pass)}@`
    : '';

  return {
    url: `smtp://${credentials}127.0.0.1:${port}`,
    port,
    messages,
    waitForMessages(count, timeoutMs = 10_000) {
      const reached = new Promise<ReceivedMail[]>((resolve) => {
        const check = () => {
          if (messages.length >= count) {
            events.off('message', check);
            resolve(messages.slice(0, count));
          }
        };
        events.on('message', check);
        check();
      });
      return withTimeout(reached, timeoutMs, `the SMTP server (waiting for ${count} mails)`);
    },
    failNext(code, message = code >= 500 ? 'Message rejected' : 'Try again later') {
      failures.push({ code, message });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Parses an RFC 822 message (CRLF or LF line ends) far enough for tests. */
export function parseMail(raw: string): ParsedMail {
  const { headers, body } = splitEntity(raw);
  const parts: { text?: string; html?: string } = {};
  collectParts(headers, body, parts);
  const first = (name: string) => headers.get(name)?.[0];
  return {
    raw,
    headers,
    subject: first('subject'),
    messageId: first('message-id'),
    from: first('from'),
    to: first('to'),
    ...parts,
  };
}

function splitEntity(raw: string): { headers: Map<string, string[]>; body: string } {
  const separator = /\r?\n\r?\n/.exec(raw);
  const head = separator ? raw.slice(0, separator.index) : raw;
  const body = separator ? raw.slice(separator.index + separator[0].length) : '';
  const headers = new Map<string, string[]>();
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) {
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = decodeWords(line.slice(colon + 1).trim());
      headers.set(name, [...(headers.get(name) ?? []), value]);
    }
  }
  return { headers, body };
}

function collectParts(
  headers: Map<string, string[]>,
  body: string,
  parts: { text?: string; html?: string },
): void {
  const type = headers.get('content-type')?.[0] ?? 'text/plain';
  const mime = type.split(';')[0].trim().toLowerCase();
  if (mime.startsWith('multipart/')) {
    const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
    if (!boundary) {
      return;
    }
    const sections = body.split(`--${boundary}`).slice(1);
    for (const section of sections) {
      if (section.startsWith('--')) {
        break;
      }
      const inner = splitEntity(section.replace(/^\r?\n/, ''));
      collectParts(inner.headers, inner.body, parts);
    }
    return;
  }
  const encoding = headers.get('content-transfer-encoding')?.[0]?.toLowerCase();
  const decoded = decodeBody(body, encoding).replace(/\r\n/g, '\n');
  if (mime === 'text/plain' && parts.text === undefined) {
    parts.text = decoded;
  } else if (mime === 'text/html' && parts.html === undefined) {
    parts.html = decoded;
  }
}

function decodeBody(body: string, encoding: string | undefined): string {
  if (encoding === 'base64') {
    return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  }
  if (encoding === 'quoted-printable') {
    return decodeQuotedPrintable(body.replace(/=\r?\n/g, ''));
  }
  return body;
}

function decodeQuotedPrintable(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const hex = text.slice(i + 1, i + 3);
    if (text[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(text[i], 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** RFC 2047 encoded words (`=?UTF-8?Q?…?=`, `=?UTF-8?B?…?=`), as nodemailer writes them. */
function decodeWords(value: string): string {
  return value
    .replace(/(\?=)\s+(=\?)/g, '$1$2')
    .replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_, _charset, kind: string, text: string) =>
      kind.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : decodeQuotedPrintable(text.replace(/_/g, ' ')),
    );
}
