import { LookupAddress, promises as dns } from 'node:dns';
import http, { IncomingMessage } from 'node:http';
import https from 'node:https';
import { LookupFunction } from 'node:net';
import { performance } from 'node:perf_hooks';
import { refusedAddressReason } from './address-policy';
import { signPayload } from './webhook-signature';

export { signPayload, verifySignature } from './webhook-signature';

export const WEBHOOK_USER_AGENT = 'labgate-webhooks';
export const SIGNATURE_HEADER = 'X-Labgate-Signature';
export const EVENT_HEADER = 'X-Labgate-Event';
export const DELIVERY_HEADER = 'X-Labgate-Delivery';

/** A receiver's answer is read this far, then dropped: only its status matters. */
const MAX_RESPONSE_BYTES = 64 * 1024;
const MAX_ERROR_EXCERPT = 200;
const MAX_URL_LENGTH = 2048;

// ---------------------------------------------------------------------------------------------
// Target checks (SSRF)

/** Resolves a host name to every address, as the connection would. */
export type ResolveHost = (hostname: string) => Promise<LookupAddress[]>;

export const resolveHost: ResolveHost = (hostname) =>
  dns.lookup(hostname, { all: true, verbatim: true });

export type WebhookTargetCheck =
  | { url: URL; addresses: LookupAddress[]; refused?: undefined }
  | {
      refused: string;
      /** DNS may answer later; a refused address will not change. */ retryable: boolean;
    };

/**
 * Checks a webhook URL and resolves its host. Refused: anything but https (http too when
 * `allowPrivate`), credentials in the URL, a host that does not resolve, and unless
 * `allowPrivate`, a host with ANY loopback, private, link-local or otherwise internal address.
 */
export async function checkWebhookTarget(
  raw: string,
  allowPrivate: boolean,
  resolve: ResolveHost = resolveHost,
): Promise<WebhookTargetCheck> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { refused: 'not a valid URL', retryable: false };
  }
  if (raw.length > MAX_URL_LENGTH) {
    return { refused: `longer than ${MAX_URL_LENGTH} characters`, retryable: false };
  }
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) {
    const allowed = allowPrivate ? 'https: or http:' : 'https:';
    return { refused: `the URL must use ${allowed}, not ${url.protocol}`, retryable: false };
  }
  if (url.username || url.password) {
    return { refused: 'the URL may not hold credentials (user:password@)', retryable: false };
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) {
    return { refused: 'the URL has no host', retryable: false };
  }
  let addresses: LookupAddress[];
  try {
    addresses = await resolve(host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return { refused: `cannot resolve ${host} (${code})`, retryable: true };
  }
  if (addresses.length === 0) {
    return { refused: `cannot resolve ${host} (no address)`, retryable: true };
  }
  if (!allowPrivate) {
    for (const { address } of addresses) {
      const reason = refusedAddressReason(address);
      if (reason) {
        return { refused: `${host} resolves to ${address}, a ${reason} address`, retryable: false };
      }
    }
  }
  return { url, addresses };
}

/** Why a webhook URL is refused, or undefined when it may be used. */
export async function checkWebhookUrl(
  url: string,
  allowPrivate: boolean,
  resolve: ResolveHost = resolveHost,
): Promise<string | undefined> {
  return (await checkWebhookTarget(url, allowPrivate, resolve)).refused;
}

// ---------------------------------------------------------------------------------------------
// Sending

export interface WebhookRequest {
  url: string;
  secret: string;
  /** Serialised once as JSON; the signature covers exactly the bytes sent. */
  body: object;
  /** Sent as `X-Labgate-Delivery`, the same on every retry: receivers de-duplicate on it. */
  deliveryId: string;
  event: string;
}

export interface WebhookResult {
  ok: boolean;
  /** The receiver's HTTP status, when it answered. */
  status?: number;
  error?: string;
  durationMs: number;
  /** Worth another attempt: 5xx, 408, 429, timeouts, connection and DNS errors. */
  retryable: boolean;
}

type Outcome =
  | { status: number; excerpt: string; location?: string }
  | { error: Error; /** False when the request could not even be built. */ retryable: boolean };

/** POSTs signed JSON to webhook receivers, refusing internal targets (see checkWebhookTarget). */
export class WebhookSender {
  constructor(
    private readonly allowPrivate: boolean,
    private readonly timeoutMs = 10_000,
    private readonly resolve: ResolveHost = resolveHost,
  ) {}

  async send(request: WebhookRequest): Promise<WebhookResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);

    // Checked again at every send: the host may resolve elsewhere since the webhook was saved.
    const target = await checkWebhookTarget(request.url, this.allowPrivate, this.resolve);
    if (target.refused !== undefined) {
      return {
        ok: false,
        error: `refused: ${target.refused}`,
        retryable: target.retryable,
        durationMs: elapsed(),
      };
    }

    const json = JSON.stringify(request.body);
    const outcome = await this.post(target.url, target.addresses, json, request);
    const durationMs = elapsed();
    if ('error' in outcome) {
      const { error, retryable } = outcome;
      return { ok: false, error: describeError(error), retryable, durationMs };
    }
    const { status } = outcome;
    if (status >= 200 && status < 300) {
      return { ok: true, status, retryable: false, durationMs };
    }
    if (status >= 300 && status < 400) {
      const to = outcome.location ? ` to ${outcome.location.slice(0, MAX_ERROR_EXCERPT)}` : '';
      return {
        ok: false,
        status,
        error: `the receiver redirected (${status})${to}; redirects are not followed`,
        retryable: false,
        durationMs,
      };
    }
    return {
      ok: false,
      status,
      error: `the receiver answered ${status}${outcome.excerpt ? `: ${outcome.excerpt}` : ''}`,
      retryable: status >= 500 || status === 408 || status === 429,
      durationMs,
    };
  }

  private post(
    url: URL,
    addresses: LookupAddress[],
    json: string,
    request: WebhookRequest,
  ): Promise<Outcome> {
    // The connection goes to the addresses just checked, never to a second DNS answer: a
    // rebinding name cannot pass the check with a public address, then connect to a private one.
    const pinned: LookupFunction = (_hostname, options, callback) => {
      if (options.all) {
        callback(null, addresses);
      } else {
        callback(null, addresses[0].address, addresses[0].family);
      }
    };

    return new Promise<Outcome>((resolve) => {
      let settled = false;
      let response: IncomingMessage | undefined;
      let received = 0;
      const chunks: Buffer[] = [];
      const settle = (outcome: Outcome) => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          resolve(outcome);
        }
      };
      const answered = (): Outcome => ({
        status: response!.statusCode ?? 0,
        excerpt: excerpt(Buffer.concat(chunks)),
        location: response!.headers.location,
      });

      const timer = setTimeout(() => {
        const timeout = Object.assign(new Error(`timed out after ${this.timeoutMs} ms`), {
          code: 'ETIMEDOUT',
        });
        // The receiver answered but is slow to finish its body: the status is what counts.
        settle(response ? answered() : { error: timeout, retryable: true });
        req.destroy(timeout);
      }, this.timeoutMs);

      const client = url.protocol === 'https:' ? https : http;
      let req: http.ClientRequest;
      try {
        req = client.request(url, {
          method: 'POST',
          // No pooled socket: each send connects to the address checked for it.
          agent: false,
          lookup: pinned,
          headers: {
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(json),
            'User-Agent': WEBHOOK_USER_AGENT,
            [EVENT_HEADER]: request.event,
            [DELIVERY_HEADER]: request.deliveryId,
            [SIGNATURE_HEADER]: signPayload(request.secret, json),
          },
        });
      } catch (err) {
        // E.g. a header value Node refuses: the same request fails the same way next time.
        clearTimeout(timer);
        resolve({ error: err as Error, retryable: false });
        return;
      }

      req.on('error', (error) => settle(response ? answered() : { error, retryable: true }));
      req.on('response', (res) => {
        response = res;
        res.on('data', (chunk: Buffer) => {
          if (received < MAX_RESPONSE_BYTES) {
            chunks.push(chunk.subarray(0, MAX_RESPONSE_BYTES - received));
          }
          received += chunk.length;
          if (received >= MAX_RESPONSE_BYTES) {
            settle(answered());
            res.destroy();
          }
        });
        res.on('end', () => settle(answered()));
        res.on('error', () => settle(answered()));
        res.on('close', () => settle(answered()));
      });
      req.end(json);
    });
  }
}

function excerpt(body: Buffer): string {
  return body
    .subarray(0, MAX_ERROR_EXCERPT * 4)
    .toString('utf8')
    .replace(/\p{Cc}+/gu, ' ')
    .trim()
    .slice(0, MAX_ERROR_EXCERPT);
}

function describeError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ETIMEDOUT' && err.message.startsWith('timed out')) {
    return err.message;
  }
  return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}
