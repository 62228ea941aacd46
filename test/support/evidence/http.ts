import { request as httpRequest, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';

export type Headers = Record<string, string>;

/** One request, as the evidence tests send it: to a real socket, with any body at all. */
export interface Call {
  method: string;
  /** Path and query, already encoded. */
  path: string;
  headers?: Headers;
  /** An object or array is sent as JSON; a string or Buffer as it is. */
  body?: unknown;
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  contentType: string;
  /** The body as text (a stream's first bytes only: see `call`). */
  text: string;
  /** The body parsed as JSON when it is JSON, else undefined. */
  json: unknown;
}

const STREAMS = /^text\/event-stream/;
/** More than this is not kept: an answer's size is not what these tests look at. */
const KEEP_BYTES = 1024 * 1024;

export interface CallOptions {
  timeoutMs?: number;
  /**
   * Resolve on the headers of a 1xx-3xx answer without reading its body: a job log followed
   * live or a long download ends when it ends, and the fuzzer only judges errors by their body.
   */
  skipSuccessBody?: boolean;
}

/**
 * Sends a request with node:http (not fetch: it must be able to send malformed bodies and odd
 * headers unchanged) and reads the answer. A Server-Sent Events stream is not read to its end
 * (it may never end): its status and headers are the answer.
 */
export function call(base: string, req: Call, options: CallOptions = {}): Promise<Answer> {
  const { timeoutMs = 20_000, skipSuccessBody = false } = options;
  const url = new URL(req.path, base);
  const headers: Headers = { ...req.headers };
  let body: Buffer | undefined;
  if (req.body !== undefined) {
    if (typeof req.body === 'string' || Buffer.isBuffer(req.body)) {
      body = Buffer.from(req.body);
    } else {
      body = Buffer.from(JSON.stringify(req.body));
      headers['Content-Type'] ??= 'application/json';
    }
    headers['Content-Length'] ??= String(body.length);
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (err: Error | undefined, answer?: Answer) => {
      if (settled) {
        return;
      }
      settled = true;
      clearTimeout(timer);
      if (err) {
        reject(err);
      } else {
        resolve(answer!);
      }
    };
    const outgoing = httpRequest(url, { method: req.method, headers, agent: false }, (res) => {
      const status = res.statusCode ?? 0;
      const contentType = String(res.headers['content-type'] ?? '');
      const chunks: Buffer[] = [];
      let kept = 0;
      const done = () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        if (/json/.test(contentType)) {
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
        }
        settle(undefined, { status, headers: res.headers, contentType, text, json });
      };
      if (STREAMS.test(contentType) || (skipSuccessBody && status < 400)) {
        res.destroy();
        done();
        return;
      }
      res.on('data', (chunk: Buffer) => {
        if (kept < KEEP_BYTES) {
          chunks.push(chunk);
          kept += chunk.length;
        }
      });
      res.on('end', done);
      res.on('error', (err) => settle(err));
      res.on('close', () =>
        settle(new Error(`${req.method} ${req.path}: the answer ended before its body did`)),
      );
    });
    const timer = setTimeout(() => {
      outgoing.destroy(new Error(`${req.method} ${req.path}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    // A server may answer (a 413, a 401) and close before it has read the whole body: the
    // client's write then fails, but the answer is read all the same.
    outgoing.on('error', (err) => setImmediate(() => settle(err)));
    outgoing.end(body);
  });
}

/** The base URL of a Nest app that listens on loopback. */
export function baseOf(server: Server): string {
  const address = server.address();
  if (!address || typeof address === 'string') {
    throw new Error('the app does not listen on a TCP port');
  }
  return `http://127.0.0.1:${address.port}`;
}

export const bearer = (token: string): Headers => ({ Authorization: `Bearer ${token}` });

export interface MultipartBody {
  body: Buffer;
  contentType: string;
}

/** Writes raw bytes on a new connection; the raw answer, once the server closes it. */
export function rawExchange(base: string, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(base).port), '127.0.0.1', () => socket.end(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
  });
}

/**
 * Starts a POST that will never finish: the headers, then half the body. The open socket is
 * returned, for the caller to drop when it likes.
 */
export async function sendHalf(
  base: string,
  path: string,
  headers: Headers,
  form: MultipartBody,
): Promise<Socket> {
  const socket = connect(Number(new URL(base).port), '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.on('connect', resolve).on('error', reject);
  });
  socket.write(
    [
      `POST ${path} HTTP/1.1`,
      'Host: 127.0.0.1',
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      `Content-Type: ${form.contentType}`,
      `Content-Length: ${form.body.length}`,
      '',
      '',
    ].join('\r\n'),
  );
  socket.write(form.body.subarray(0, form.body.length / 2));
  return socket;
}
