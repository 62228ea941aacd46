import { createHmac, timingSafeEqual } from 'node:crypto';

/*
 * Webhook signatures, for senders and receivers alike. A receiver verifies a request with the
 * raw body (before any JSON parsing) and the webhook's secret:
 *
 *   verifySignature(secret, req.headers['x-labgate-signature'], rawBody)
 */

/**
 * The `X-Labgate-Signature` value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
 * The timestamp is signed with the body, so a captured request cannot be replayed later.
 */
export function signPayload(
  secret: string,
  body: string,
  timestamp = Math.floor(Date.now() / 1000),
): string {
  return `t=${timestamp},v1=${hmacHex(secret, timestamp, body)}`;
}

/**
 * What a receiver runs on the raw request body: true when one `v1` of the header is the HMAC
 * of the body under `secret` and `t` is within `toleranceSeconds` of now.
 */
export function verifySignature(
  secret: string,
  header: string | undefined,
  body: string | Buffer,
  toleranceSeconds = 300,
  nowSeconds = Date.now() / 1000,
): boolean {
  if (!header) {
    return false;
  }
  let timestamp: string | undefined;
  const candidates: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (eq < 0) {
      continue;
    }
    if (name === 't' && /^\d{1,12}$/.test(value)) {
      timestamp = value;
    } else if (name === 'v1' && /^[0-9a-f]{64}$/i.test(value)) {
      candidates.push(value);
    }
  }
  if (timestamp === undefined || Math.abs(nowSeconds - Number(timestamp)) > toleranceSeconds) {
    return false;
  }
  const expected = Buffer.from(hmacHex(secret, timestamp, body), 'hex');
  // Compare against every candidate so timing does not tell which one matched.
  return candidates
    .map((candidate) => timingSafeEqual(expected, Buffer.from(candidate, 'hex')))
    .includes(true);
}

/** Signs the timestamp as written in the header, so `t=017…` cannot verify as `t=17…`. */
function hmacHex(secret: string, timestamp: number | string, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}
