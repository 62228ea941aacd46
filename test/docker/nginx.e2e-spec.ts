import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { request as httpsRequest, RequestOptions } from 'node:https';
import { request as httpRequest } from 'node:http';
import { AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/labgate-process';

/**
 * docker/nginx.conf, run: a real nginx with the example file (only its ports and certificate
 * paths changed) in front of two stand-in API replicas that record what reaches them. Proves
 * what the file promises: both replicas used, forwarded headers, uploads streamed without a
 * size cap, event streams unbuffered, /metrics kept private.
 */

const ROOT = join(__dirname, '..', '..');
const NGINX = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
const HOST = 'labgate.example.org';

interface Seen {
  replica: string;
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

/** A stand-in API replica: answers with its name, streams events, reports upload progress. */
class Replica {
  readonly seen: Seen[] = [];
  readonly held: ServerResponse[] = [];
  /** Called with the bytes of a request body received so far, as they arrive. */
  onBody?: (url: string, received: number) => void;
  server!: Server;

  constructor(readonly name: string) {}

  async start(): Promise<number> {
    this.server = createServer((req, res) => {
      this.seen.push({
        replica: this.name,
        method: req.method!,
        url: req.url!,
        headers: req.headers,
      });
      if (/\/(events|log)(\?|$)/.test(req.url!)) {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(`event: state\ndata: {"replica":"${this.name}"}\n\n`); // then nothing: held open
        this.held.push(res);
        return;
      }
      let received = 0;
      req.on('data', (chunk: Buffer) => {
        received += chunk.length;
        this.onBody?.(req.url!, received);
      });
      req.on('end', () => res.end(JSON.stringify({ replica: this.name })));
      req.on('error', () => {});
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.held.forEach((res) => res.destroy());
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** Replaces `pattern` in the example, failing when the example no longer has it. */
function swap(text: string, pattern: RegExp, replacement: string): string {
  if (!pattern.test(text)) {
    throw new Error(`docker/nginx.conf no longer matches ${pattern}; update this test`);
  }
  return text.replace(pattern, replacement);
}

describe('docker/nginx.conf', () => {
  const dir = mkdtempSync(join(tmpdir(), 'labgate-nginx-'));
  const replicas = [new Replica('a'), new Replica('b')];
  let nginx: ChildProcess;
  let tls: number;
  let plain: number;
  let wrapper: string;

  const https = (path: string, options: RequestOptions = {}) =>
    httpsRequest({
      host: '127.0.0.1',
      port: tls,
      path,
      rejectUnauthorized: false,
      ...options,
      headers: { Host: HOST, ...options.headers },
    });

  /** Status and body of a complete request. */
  async function fetchTls(path: string, options: RequestOptions = {}, body?: string) {
    const req = https(path, options);
    req.end(body);
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    let text = '';
    for await (const chunk of res) {
      text += String(chunk);
    }
    return { status: res.statusCode, headers: res.headers, text };
  }

  beforeAll(async () => {
    if (!existsSync(NGINX) && NGINX.startsWith('/')) {
      throw new Error('nginx is not installed: .ci/run installs it (apt-get install nginx-light)');
    }
    const [a, b] = await Promise.all(replicas.map((r) => r.start()));
    [tls, plain] = [await freePort(), await freePort()];
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        `/CN=${HOST}`,
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    let conf = readFileSync(join(ROOT, 'docker', 'nginx.conf'), 'utf8');
    conf = swap(conf, /^(\s*)server 127\.0\.0\.1:3000\b/m, `$1server 127.0.0.1:${a}`);
    conf = swap(conf, /^(\s*)server 127\.0\.0\.1:3001\b/m, `$1server 127.0.0.1:${b}`);
    conf = swap(conf, /^\s*listen \[::\]:.*$/gm, ''); // no IPv6 needed (nor always there)
    conf = swap(conf, /^(\s*)listen 443 ssl/m, `$1listen 127.0.0.1:${tls} ssl`);
    conf = swap(conf, /^(\s*)listen 80;/m, `$1listen 127.0.0.1:${plain};`);
    conf = swap(
      conf,
      /^(\s*)ssl_certificate\s+\S+;/m,
      `$1ssl_certificate ${join(dir, 'cert.pem')};`,
    );
    conf = swap(
      conf,
      /^(\s*)ssl_certificate_key\s+\S+;/m,
      `$1ssl_certificate_key ${join(dir, 'key.pem')};`,
    );
    writeFileSync(join(dir, 'labgate.conf'), conf);
    // Worker processes may run as another user (nobody, when started as root): they need to
    // reach the temp directories.
    chmodSync(dir, 0o755);
    for (const temp of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
      mkdirSync(join(dir, temp));
      chmodSync(join(dir, temp), 0o777);
    }
    wrapper = join(dir, 'nginx.conf');
    writeFileSync(
      wrapper,
      `daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  include ${join(dir, 'labgate.conf')};
}
`,
    );
    nginx = spawn(NGINX, ['-c', wrapper, '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    nginx.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    for (let i = 0; ; i++) {
      const up = await new Promise<boolean>((resolve) => {
        const socket = connect(tls, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        }).on('error', () => resolve(false));
      });
      if (up) {
        break;
      }
      if (i > 100 || nginx.exitCode !== null) {
        throw new Error(`nginx did not start: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 30_000);

  afterAll(async () => {
    if (nginx && nginx.exitCode === null) {
      nginx.kill('SIGTERM');
      await once(nginx, 'exit');
    }
    await Promise.all(replicas.map((r) => r.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    replicas.forEach((r) => (r.seen.length = 0));
  });

  it('passes nginx -t', () => {
    const out = execFileSync(NGINX, ['-t', '-c', wrapper, '-p', dir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(out).toBe(''); // -t reports on stderr; execFileSync throws on a non-zero exit
  });

  it('redirects plain HTTP to HTTPS', async () => {
    const req = httpRequest({
      host: '127.0.0.1',
      port: plain,
      path: '/docs',
      headers: { Host: HOST },
    });
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    res.resume();
    expect(res.statusCode).toBe(301);
    expect(res.headers.location).toBe(`https://${HOST}/docs`);
  });

  it('spreads requests over both replicas, with the forwarded headers labgate trusts', async () => {
    const answers = [];
    for (let i = 0; i < 4; i++) {
      answers.push(
        await fetchTls('/health/live', { headers: { 'X-Forwarded-For': '203.0.113.9' } }),
      );
    }
    expect(new Set(answers.map((a) => JSON.parse(a.text).replica))).toEqual(new Set(['a', 'b']));
    const seen = [...replicas[0].seen, ...replicas[1].seen];
    expect(seen).toHaveLength(4);
    for (const request of seen) {
      expect(request.headers).toMatchObject({
        host: HOST,
        'x-forwarded-proto': 'https',
        'x-forwarded-host': HOST,
        // Appended, not replaced: labgate reads it from the right (TRUST_PROXY).
        'x-forwarded-for': '203.0.113.9, 127.0.0.1',
      });
    }
  });

  it.each(['/api/v1/jobs', '/api/v1/agent/jobs/0f8fad5b-d9cb-469f-a165-70867728950e/complete'])(
    'streams an upload to %s as it arrives, whatever its size',
    async (path) => {
      const arrived = new Promise<number>((resolve) => {
        replicas.forEach((r) => (r.onBody = (url, received) => url === path && resolve(received)));
      });
      // 5 GiB announced, 64 KiB sent: a buffering proxy would wait for the rest, a capped one
      // would answer 413.
      const req = https(path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': 5 * 1024 ** 3 },
      });
      req.on('error', () => {});
      let status: number | undefined;
      req.on('response', (res: IncomingMessage) => (status = res.statusCode));
      req.write(Buffer.alloc(64 * 1024));
      expect(await arrived).toBeGreaterThan(0);
      expect(status).toBeUndefined();
      req.destroy();
      replicas.forEach((r) => (r.onBody = undefined));
    },
  );

  it('keeps the body limit small elsewhere', async () => {
    const res = await fetchTls('/api/v1/results', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': 20 * 1024 ** 2 },
    });
    expect(res.status).toBe(413);
    expect(replicas.flatMap((r) => r.seen)).toEqual([]);
  });

  it.each([
    '/api/v1/jobs/0f8fad5b-d9cb-469f-a165-70867728950e/events',
    '/api/v1/jobs/0f8fad5b-d9cb-469f-a165-70867728950e/log?follow=1',
  ])(
    'passes each event of %s on at once, unbuffered, while the stream stays open',
    async (path) => {
      const req = https(path, { headers: { Accept: 'text/event-stream' } });
      req.end();
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      expect(res.statusCode).toBe(200);
      // The replica wrote one small event and holds the response open: a buffering proxy
      // would keep it until its buffer filled or the stream ended.
      const [chunk] = (await once(res, 'data')) as [Buffer];
      expect(String(chunk)).toMatch(/^event: state\ndata: \{"replica":"[ab]"\}/);
      req.destroy();
    },
  );

  it('does not expose /metrics', async () => {
    const res = await fetchTls('/metrics', { headers: { Authorization: 'Bearer anything' } });
    expect(res.status).toBe(404);
    expect(replicas.flatMap((r) => r.seen)).toEqual([]);
  });
});
