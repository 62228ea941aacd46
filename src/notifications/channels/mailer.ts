import { Logger, LoggerService } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTransport, Transporter } from 'nodemailer';
import { parseConnectionUrl } from 'nodemailer/lib/shared';
import type SMTPPool from 'nodemailer/lib/smtp-pool';
import type StreamTransport from 'nodemailer/lib/stream-transport';
import { AppConfig } from '../../config/app-config';

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
  html: string;
  /**
   * A key unique to this mail (e.g. the delivery id), not a header value: the `Message-ID` is
   * derived from it, so every retry of one delivery carries the same Message-ID.
   */
  messageId: string;
  /** Extra headers, e.g. `X-Labgate-Event`. */
  headers?: Record<string, string>;
}

export interface MailReceipt {
  delivered: 'smtp' | 'file';
  /** The Message-ID header value, angle brackets included. */
  id: string;
  /** The .eml file, when written instead of sent. */
  path?: string;
}

/** Where mail goes: an SMTP server, .eml files (development), or nowhere (production, unset). */
export type MailMode = 'smtp' | 'file' | 'off';

/**
 * A failed send. `permanent` (an SMTP 5xx, a malformed envelope, mail switched off) means the
 * same mail will fail again; anything else (refused connection, timeout, 4xx) is worth a retry.
 */
export class MailDeliveryError extends Error {
  override readonly name = 'MailDeliveryError';
  readonly permanent: boolean;
  /** The SMTP reply code, when the server answered. */
  readonly responseCode?: number;
  /** nodemailer's error code (ECONNECTION, ETIMEDOUT, EENVELOPE, …) or a Node socket code. */
  readonly code?: string;

  constructor(
    message: string,
    options: { permanent: boolean; responseCode?: number; code?: string; cause?: unknown },
  ) {
    super(message, { cause: options.cause });
    this.permanent = options.permanent;
    this.responseCode = options.responseCode;
    this.code = options.code;
  }
}

export const MAIL_OFF_MESSAGE = 'SMTP_URL is not set: mail is off';

const SMTP_TIMEOUT_MS = 10_000;
/** Message-IDs derived from longer keys are hashed, so file names stay short. */
const MAX_ID_LEFT_CHARS = 150;

/**
 * Sends notification mail: through SMTP_URL (a small connection pool), or, outside production
 * with no SMTP_URL, as .eml files under VAR_DIR/mail that a developer can open.
 */
export class Mailer {
  readonly mode: MailMode;
  private readonly smtp?: Transporter<SMTPPool.SentMessageInfo, SMTPPool.Options>;
  private readonly files?: Transporter<StreamTransport.SentMessageInfo, StreamTransport.Options>;
  private readonly mailDir: string;
  private readonly idDomain: string;

  constructor(
    private readonly config: AppConfig,
    private readonly logger: Pick<LoggerService, 'log'> = new Logger(Mailer.name),
  ) {
    this.mailDir = join(config.varDir, 'mail');
    this.idDomain = messageIdDomain(config.publicUrl);
    if (config.mail.smtpUrl) {
      this.mode = 'smtp';
      const options: SMTPPool.Options & { maxRequeues: number } = {
        ...parseConnectionUrl(config.mail.smtpUrl),
        pool: true,
        maxConnections: 2,
        // Without a cap the pool re-queues forever a message whose connection keeps dropping.
        maxRequeues: 1,
        connectionTimeout: SMTP_TIMEOUT_MS,
        greetingTimeout: SMTP_TIMEOUT_MS,
        socketTimeout: SMTP_TIMEOUT_MS,
      };
      this.smtp = createTransport(options);
    } else if (!config.isProduction) {
      this.mode = 'file';
      this.files = createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
    } else {
      this.mode = 'off';
    }
  }

  async send(mail: OutgoingMail): Promise<MailReceipt> {
    const idLeft = messageIdLeft(mail.messageId);
    const id = `<${idLeft}@${this.idDomain}>`;
    const options = {
      from: this.config.mail.from,
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
      html: mail.html,
      messageId: id,
      // RFC 3834: keeps vacation responders from answering a notification.
      headers: { 'Auto-Submitted': 'auto-generated', ...mail.headers },
    };

    if (this.smtp) {
      try {
        const info = await this.smtp.sendMail(options);
        return { delivered: 'smtp', id: info.messageId || id };
      } catch (err) {
        throw toMailDeliveryError(err);
      }
    }
    if (this.files) {
      let message: Buffer;
      try {
        message = (await this.files.sendMail(options)).message as Buffer;
      } catch (err) {
        throw toMailDeliveryError(err);
      }
      const path = join(this.mailDir, `${idLeft}.eml`);
      await writeAtomically(path, unixLineEnds(message));
      this.logger.log(`Mail "${mail.subject}" to ${mail.to} written to ${path} (no SMTP_URL)`);
      return { delivered: 'file', id, path };
    }
    throw new MailDeliveryError(MAIL_OFF_MESSAGE, { permanent: true, code: 'EMAILOFF' });
  }

  /** Closes pooled SMTP connections. */
  close(): void {
    this.smtp?.close();
    this.files?.close();
  }
}

/** Classifies a nodemailer or socket error as permanent or worth a retry. */
export function toMailDeliveryError(err: unknown): MailDeliveryError {
  if (err instanceof MailDeliveryError) {
    return err;
  }
  const e = (err ?? {}) as { message?: string; code?: string; responseCode?: number };
  const responseCode = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const permanent =
    responseCode !== undefined
      ? responseCode >= 500 && responseCode < 600
      : // Rejected before talking to the server: the same mail is rejected again.
        code === 'EENVELOPE' || code === 'EMESSAGE';
  const reason = e.message ?? String(err);
  return new MailDeliveryError(`SMTP ${permanent ? 'rejected' : 'failed'}: ${reason}`, {
    permanent,
    responseCode,
    code,
    cause: err,
  });
}

/**
 * The left part of a Message-ID (RFC 5322 dot-atom-text) from an arbitrary key, injectively:
 * every character outside [A-Za-z0-9_-] becomes `=XX`, so `delivery:1` and `delivery-1` differ.
 * The result is also a safe file name.
 */
export function messageIdLeft(key: string): string {
  if (key === '') {
    throw new Error('a mail needs a messageId (the delivery id)');
  }
  const encoded = Buffer.from(key, 'utf8')
    .toString('latin1')
    .replace(
      /[^A-Za-z0-9_-]/g,
      (c) => `=${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
    );
  if (encoded.length <= MAX_ID_LEFT_CHARS) {
    return `labgate.${encoded}`;
  }
  // `+` never occurs in an encoded key, so a hashed id cannot equal an encoded one.
  return `labgate+sha256-${createHash('sha256').update(key).digest('hex')}`;
}

/** The installation's host name, when it is a valid Message-ID domain. */
function messageIdDomain(publicUrl: string): string {
  try {
    const host = new URL(publicUrl).hostname;
    return /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(host) ? host : 'labgate.invalid';
  } catch {
    return 'labgate.invalid';
  }
}

/**
 * nodemailer 7 writes CRLF headers around LF text parts whatever `newline` says; a local file
 * reads best with LF throughout. Byte-safe: CR LF never occurs inside a UTF-8 sequence.
 */
function unixLineEnds(message: Buffer): Buffer {
  return Buffer.from(message.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
}

/** A reader never sees half a file: write beside the target, then rename over it. */
async function writeAtomically(path: string, data: Buffer): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, data, { mode: 0o600 });
    await rename(temporary, path);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}
