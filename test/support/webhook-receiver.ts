import { EventEmitter } from 'node:events';
import { createServer, IncomingHttpHeaders } from 'node:http';
import { AddressInfo } from 'node:net';
import { withTimeout } from '../../src/common/with-timeout';

export interface ReceivedRequest {
  method: string;
  /** Path and query. */
  url: string;
  /** Lower-case names, as Node gives them. */
  headers: IncomingHttpHeaders;
  /** The body exactly as received: what a signature is verified against. */
  rawBody: Buffer;
  body: string;
}

export interface ReceiverResponse {
  status: number;
  body?: string;
  headers?: Record<string, string>;
  /** Waits this long before answering (to provoke a client timeout). */
  delayMs?: number;
}

export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>/hook` */
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** Answers the next requests with these, in order; then 200 again. */
  respondWith(...responses: Array<number | ReceiverResponse>): void;
  /** Resolves once `count` requests have been received in full. */
  waitForRequests(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

/** A real HTTP server on loopback that records every request and answers as scripted. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const requests: ReceivedRequest[] = [];
  const scripted: ReceiverResponse[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const events = new EventEmitter();

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks);
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawBody,
        body: rawBody.toString('utf8'),
      });
      events.emit('request');
      const response = scripted.shift() ?? { status: 200, body: 'ok' };
      const answer = () => {
        timers.delete(timer);
        if (!res.destroyed) {
          res.writeHead(response.status, response.headers).end(response.body ?? '');
        }
      };
      const timer = setTimeout(answer, response.delayMs ?? 0);
      timers.add(timer);
      res.on('close', () => {
        clearTimeout(timer);
        timers.delete(timer);
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    requests,
    respondWith(...responses) {
      scripted.push(...responses.map((r) => (typeof r === 'number' ? { status: r } : r)));
    },
    waitForRequests(count, timeoutMs = 10_000) {
      const reached = new Promise<ReceivedRequest[]>((resolve) => {
        const check = () => {
          if (requests.length >= count) {
            events.off('request', check);
            resolve(requests.slice(0, count));
          }
        };
        events.on('request', check);
        check();
      });
      return withTimeout(reached, timeoutMs, `the webhook receiver (waiting for ${count})`);
    },
    close() {
      for (const timer of timers) {
        clearTimeout(timer);
      }
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
