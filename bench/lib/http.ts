import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { request } from 'node:http';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';

export type Headers = Record<string, string>;

export async function postJson<T = Record<string, unknown>>(
  url: string,
  body: unknown,
  headers: Headers,
  expect = 201,
): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== expect) {
    throw new Error(`POST ${url}: ${res.status} ${text}`);
  }
  return JSON.parse(text) as T;
}

export async function waitForHttp(url: string, timeoutMs: number, alive: () => boolean) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) {
        return;
      }
    } catch {
      // not listening yet
    }
    if (!alive()) {
      throw new Error(`the process serving ${url} exited`);
    }
    if (Date.now() > until) {
      throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The tests' event-stream reader, so that bench and tests parse SSE one way. */
export { readEvents as followEvents, type SseEvent } from '../../test/support/jobs';

/**
 * POSTs a multipart/form-data body whose file part is streamed from disk: the preamble (text
 * fields and the part header), the file, the closing boundary. Content-Length is exact, so
 * the request is not chunked. Resolves with the status and the parsed JSON answer.
 */
export async function postMultipartFile(
  url: string,
  headers: Headers,
  fields: Record<string, string>,
  file: { field: string; path: string; contentType?: string },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const boundary = `----labgatebench${randomBytes(12).toString('hex')}`;
  let preamble = '';
  for (const [name, value] of Object.entries(fields)) {
    preamble +=
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n` + `${value}\r\n`;
  }
  preamble +=
    `--${boundary}\r\nContent-Disposition: form-data; name="${file.field}"; ` +
    `filename="${basename(file.path)}"\r\n` +
    `Content-Type: ${file.contentType ?? 'application/octet-stream'}\r\n\r\n`;
  const epilogue = `\r\n--${boundary}--\r\n`;
  const head = Buffer.from(preamble);
  const tail = Buffer.from(epilogue);
  const length = head.length + statSync(file.path).size + tail.length;

  async function* body() {
    yield head;
    for await (const chunk of createReadStream(file.path, { highWaterMark: 1024 * 1024 })) {
      yield chunk as Buffer;
    }
    yield tail;
  }

  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: `${target.pathname}${target.search}`,
        method: 'POST',
        headers: {
          ...headers,
          'Content-Type': `multipart/form-data; boundary=${boundary}`,
          'Content-Length': String(length),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          try {
            resolve({
              status: res.statusCode ?? 0,
              body: JSON.parse(text) as Record<string, unknown>,
            });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: { text } });
          }
        });
      },
    );
    req.on('error', reject);
    // The server may answer (and close) before the body is all sent, e.g. a 413: the answer wins.
    pipeline(Readable.from(body()), req).catch(() => {});
  });
}

/**
 * `postMultipartFile` sent by a fresh child process, timed there (from the request to the
 * answer's end). This process has run the other benches by then: its heap, sockets and
 * timers made it a client that sends a large body at a third of the speed, the same for the
 * API and for a server that discards, which would be counted against the server.
 */
export async function postMultipartFileFromChild(
  url: string,
  headers: Headers,
  fields: Record<string, string>,
  file: { field: string; path: string; contentType?: string },
): Promise<{ status: number; body: Record<string, unknown>; seconds: number }> {
  const script = `
    const { postMultipartFile } = require(${JSON.stringify(__filename)});
    const [url, headers, fields, file] = JSON.parse(process.argv[1]);
    const t0 = performance.now();
    postMultipartFile(url, headers, fields, file).then(
      (res) => process.stdout.write(JSON.stringify({ ...res, seconds: (performance.now() - t0) / 1000 })),
      (err) => { console.error(err); process.exit(1); },
    );`;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      '-r',
      'ts-node/register/transpile-only',
      '-e',
      script,
      JSON.stringify([url, headers, fields, file]),
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  return JSON.parse(stdout) as { status: number; body: Record<string, unknown>; seconds: number };
}
