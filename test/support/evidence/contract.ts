import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Answer, Call } from './http';

/** Why an answer breaks the contract (no 5xx; every 4xx a problem document), if it does. */
export function breach(res: Answer): string | undefined {
  if (res.status >= 500) {
    return `answered ${res.status}: ${res.text.slice(0, 300)}`;
  }
  if (res.status >= 400) {
    if (!/^application\/problem\+json/.test(res.contentType)) {
      return `answered ${res.status} as "${res.contentType}": ${res.text.slice(0, 300)}`;
    }
    const p = res.json as Record<string, unknown> | undefined;
    if (
      typeof p?.type !== 'string' ||
      typeof p.title !== 'string' ||
      p.status !== res.status ||
      typeof p.detail !== 'string'
    ) {
      return `answered ${res.status} without type, title, status and detail: ${res.text.slice(0, 300)}`;
    }
  }
  return undefined;
}

/** A request in one line, long parts cut, for a failure report. */
export function describeRequest(req: Call & { label?: string }): string {
  const text = Buffer.isBuffer(req.body)
    ? req.body.toString('latin1')
    : typeof req.body === 'string'
      ? req.body
      : JSON.stringify(req.body);
  const body =
    text === undefined
      ? ''
      : ` body(${Buffer.byteLength(text)} bytes)=${JSON.stringify(text.slice(0, 200))}`;
  return `${req.method} ${req.path.slice(0, 300)} ${req.label ?? ''} headers=${JSON.stringify(
    req.headers,
  ).slice(0, 400)}${body}`;
}

/** A full garbage collection: `--expose-gc` if jest ran with it, else switched on now. */
export function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) {
    return exposed;
  }
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
