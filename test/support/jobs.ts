import type { Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

/** The base URL of an app listening on loopback (SSE needs a real socket). */
export function baseUrl(http: Server): string {
  const { port } = http.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

/**
 * Reads a job's Server-Sent Events, calling `onEvent` as each arrives (pings skipped), until
 * the server ends the stream (the job's final state).
 */
export async function readEvents(
  url: string,
  headers: Record<string, string>,
  onEvent: (event: SseEvent) => void,
): Promise<void> {
  const res = await fetch(url, { headers: { Accept: 'text/event-stream', ...headers } });
  if (res.status !== 200 || !res.body) {
    throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  }
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (data && event !== 'ping') {
        onEvent({ event, data: JSON.parse(data) as Record<string, unknown> });
      }
    }
  }
}

/** Every event of a job's stream, once the server has ended it. */
export async function followEvents(
  url: string,
  headers: Record<string, string>,
): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  await readEvents(url, headers, (event) => events.push(event));
  return events;
}

/** The files of a tar.gz (regular files only), by path without a leading `./`. */
export function untar(gz: Buffer): Record<string, Buffer> {
  const tar = gunzipSync(gz);
  const files: Record<string, Buffer> = {};
  for (let offset = 0; offset + 512 <= tar.length;) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) {
      break;
    }
    const name = header.subarray(0, 100).toString().replace(/\0.*$/s, '');
    const prefix = header.subarray(345, 500).toString().replace(/\0.*$/s, '');
    const size = parseInt(
      header.subarray(124, 136).toString().replace(/\0.*$/s, '').trim() || '0',
      8,
    );
    const type = String.fromCharCode(header[156]);
    const path = (prefix ? `${prefix}/${name}` : name).replace(/^\.\//, '');
    if (type === '0' || type === '\0') {
      files[path] = tar.subarray(offset + 512, offset + 512 + size);
    }
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}
