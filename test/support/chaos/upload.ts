import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import type { ApiProcess } from './installation';

/**
 * A multipart body made as it is sent (never held in memory): text fields, then one file part
 * of `file.bytes` bytes in 1 MiB chunks. `sent()` tells how many file bytes went out so far.
 */
export function multipartStream(
  fields: Record<string, string>,
  file: { field: string; filename: string; bytes: number },
  /** Stops sending after `at` file bytes until `until` resolves (an upload kept in flight). */
  hold?: { at: number; until: Promise<void> },
) {
  const boundary = `----labgate${randomBytes(8).toString('hex')}`;
  const head =
    Object.entries(fields)
      .map(
        ([name, value]) =>
          `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`,
      )
      .join('') +
    `--${boundary}\r\nContent-Disposition: form-data; name="${file.field}"; ` +
    `filename="${file.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  const tail = `\r\n--${boundary}--\r\n`;
  const chunk = Buffer.alloc(1024 * 1024, 'z');
  let sent = 0;
  let stage: 'head' | 'file' | 'tail' | 'done' = 'head';
  const body = new Readable({
    read() {
      if (stage === 'head') {
        stage = 'file';
        this.push(head);
      } else if (stage === 'file') {
        if (hold && sent >= hold.at) {
          const resume = hold.until;
          hold = undefined;
          void resume.then(() => this._read(chunk.length)); // read() waits for a push: go on
          return;
        }
        const part = chunk.subarray(0, Math.min(chunk.length, file.bytes - sent));
        sent += part.length;
        if (sent >= file.bytes) {
          stage = 'tail';
        }
        this.push(part);
      } else if (stage === 'tail') {
        stage = 'done';
        this.push(tail);
      } else {
        this.push(null);
      }
    },
  });
  return {
    body,
    contentType: `multipart/form-data; boundary=${boundary}`,
    length: Buffer.byteLength(head) + file.bytes + Buffer.byteLength(tail),
    sent: () => sent,
  };
}

/**
 * POSTs a streamed multipart body to the API. Resolves with the status and body, or with
 * status 0 and the error when the connection breaks (the API was killed, say).
 */
export function postStream(
  api: ApiProcess,
  path: string,
  headers: Record<string, string>,
  upload: ReturnType<typeof multipartStream>,
): Promise<{ status: number; body: string; error?: Error }> {
  return new Promise((resolve) => {
    const req = request(
      `${api.url}${path}`,
      {
        method: 'POST',
        headers: {
          ...headers,
          'Content-Type': upload.contentType,
          'Content-Length': String(upload.length),
        },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', (error) => resolve({ status: 0, body, error }));
      },
    );
    req.on('error', (error) => {
      upload.body.destroy();
      resolve({ status: 0, body: '', error });
    });
    upload.body.pipe(req);
  });
}
