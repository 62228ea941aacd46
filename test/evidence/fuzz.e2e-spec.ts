import fc from 'fast-check';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROLE_ENV } from '../support/devices';
import { MB } from '../support/evidence/arbitraries';
import { evilArchives } from '../support/evidence/evil-archives';
import { buildFuzzWorld, type FuzzWorld } from '../support/evidence/fuzz-world';
import { breach, collector, describeRequest } from '../support/evidence/contract';
import {
  baseOf,
  call,
  type Call,
  type Headers,
  type MultipartBody,
  rawExchange,
  sendHalf,
} from '../support/evidence/http';
import { multipart, type Part } from '../support/evidence/multipart';
import { fetchOpenApi, type OpenApiDocument, operationsOf } from '../support/evidence/openapi';
import { type FuzzRequest, requestsFor } from '../support/evidence/requests';
import { waitUntil } from '../support/recovery';
import { resultsServicesDir } from '../support/results';
import { startTestApp, type TestApp } from '../support/test-app';

/**
 * Reproducible by default: the same seed on every run and in CI. FUZZ_SEED=<n> explores
 * elsewhere, FUZZ_RUNS=<n> changes the requests per operation (the default keeps the file near
 * a minute on two cores). A failure prints the seed and the shrunk request.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20_260_611);
const RUNS = Number(process.env.FUZZ_RUNS ?? 40);
const LIMITS = { maxFiles: 20, maxBytes: 4 * MB };

describe('fuzzing: generated and malformed requests against every operation', () => {
  let app: TestApp;
  let world: FuzzWorld;
  let doc: OpenApiDocument;
  let base: string;

  beforeAll(async () => {
    app = await startTestApp({
      ...ROLE_ENV,
      // No worker: submitted jobs wait, so that the fuzzer's load is HTTP only.
      ROLE: 'api',
      SERVICES_DIR: resultsServicesDir(),
      WEBHOOK_ALLOW_PRIVATE: 'true',
      DEVICE_DOWN_AFTER_SECONDS: '3600',
      RATE_LIMIT_USER_PER_MINUTE: '0',
      RATE_LIMIT_IP_PER_MINUTE: '0',
      MAX_PAYLOAD_FILES: String(LIMITS.maxFiles),
      MAX_PAYLOAD_BYTES: String(LIMITS.maxBytes),
    });
    await app.app.listen(0, '127.0.0.1');
    base = baseOf(app.app.getHttpServer());
    doc = await fetchOpenApi(base);
    world = await buildFuzzWorld(app, base);
  }, 60_000);
  afterAll(() => app?.close());

  const send = (req: Call) => call(base, req, { skipSuccessBody: true });
  const entries = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
  const jobsDir = () => join(app.config.storageDir, 'jobs');
  /** Where storage writes before it renames: a file left here is an upload nobody finished. */
  const tempDir = () => join(app.config.storageDir, '.tmp');
  const noTempFiles = () =>
    waitUntil('no temp files of refused uploads', () =>
      Promise.resolve(entries(tempDir()).length === 0),
    );

  async function expectAlive() {
    const res = await send({ method: 'GET', path: '/health/live' });
    expect(res.status).toBe(200);
  }

  /** Sends each request; returns the breaches, each with its request. */
  async function breaches(requests: Array<[string, Call]>, expect4xx = false): Promise<string[]> {
    const found: string[] = [];
    for (const [name, req] of requests) {
      const res = await send(req);
      const why =
        breach(res) ??
        (expect4xx && (res.status < 400 || res.status >= 500)
          ? `answered ${res.status}, not a 4xx: ${res.text.slice(0, 200)}`
          : undefined);
      if (why) {
        found.push(`${name}: ${why}`);
      }
    }
    return found;
  }

  /**
   * Sends the headers and half the body of a multipart request, waits until storage is
   * writing the file, then drops the connection.
   */
  async function dropHalfWay(path: string, headers: Headers, form: MultipartBody) {
    const socket = await sendHalf(base, path, headers, form);
    await waitUntil('the upload to reach storage', () =>
      Promise.resolve(entries(tempDir()).length > 0),
    );
    socket.destroy();
  }

  it('answers what Node itself refuses (huge URL or headers, broken HTTP) with problems', async () => {
    const huge = await send({ method: 'GET', path: `/api/v1/jobs?service=${'a'.repeat(20_000)}` });
    expect([huge.status, huge.contentType, (huge.json as { status?: number })?.status]).toEqual([
      431,
      'application/problem+json',
      431,
    ]);
    const header = await send({
      method: 'GET',
      path: '/health/live',
      headers: { 'X-Padding': 'p'.repeat(20_000) },
    });
    expect(breach(header)).toBeUndefined();
    expect(header.status).toBe(431);
    for (const raw of ['NOT HTTP AT ALL\r\n\r\n', 'GET / HTTP/1.1\r\nHost x\r\n\r\n']) {
      const answer = await rawExchange(base, raw);
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer).toMatch(/content-type: application\/problem\+json/i);
    }
    await expectAlive();
  });

  it('answers the requests that once broke it with 4xx problems', async () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    const cursor = (...parts: unknown[]) =>
      Buffer.from(JSON.stringify(parts)).toString('base64url');
    const day = '2024-01-01T00:00:00.000Z';
    const far = '-271821-04-20T00:00:00.000Z';
    const uuid = '00000000-0000-4000-8000-000000000000';
    const get = (path: string, who = world.headers.admin): Call => ({
      method: 'GET',
      path,
      headers: who,
    });
    const post = (path: string, body: unknown, who = world.headers.admin): Call => ({
      method: 'POST',
      path,
      headers: { ...who, 'Content-Type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const form = multipart([
      { name: 'service', body: 'echo' },
      { name: 'message', body: 'a\u0000b' },
    ]);
    const cases: Array<[string, Call]> = [
      // class-transformer recursed until the stack overflowed: 500
      ['a body nested 200 000 deep', post('/api/v1/me/notifications/read', `{"ids":${deep}}`)],
      ['the same on an agent route', post('/api/v1/agent/heartbeat', deep, world.headers.device)],
      // an array reached a function that takes a string: 500
      ['returnTo given twice', get('/api/v1/auth/login?returnTo=%2Fdocs&returnTo=%2Fx', {})],
      // a cursor id that is no UUID, or a date PostgreSQL cannot store, reached the query: 500
      ['a job cursor with an id that is no UUID', get(`/api/v1/jobs?cursor=${cursor(day, 'x')}`)],
      ['a job cursor from year -271821', get(`/api/v1/jobs?cursor=${cursor(far, uuid)}`)],
      [
        'an audit cursor with an id that is no UUID',
        get(`/api/v1/admin/audit?cursor=${cursor(day, 'x')}`),
      ],
      [
        'a result cursor from year -271821',
        get(`/api/v1/results?sort=-createdAt&cursor=${cursor('-createdAt', far, uuid)}`),
      ],
      // a date JavaScript parses and PostgreSQL cannot store: 500
      ['jobs since year -271821', get(`/api/v1/jobs?since=${far}`)],
      [
        'results created since year +275760',
        get('/api/v1/results?createdSince=%2B275760-09-13T00:00:00Z'),
      ],
      // a NUL reached PostgreSQL: 500, or 503 "database unavailable" when it was in the SQL text
      ['a NUL in a metrics filter', get('/api/v1/results?filter=metrics.name%3Da%00b')],
      [
        'a NUL in a command cursor',
        get(`/api/v1/devices/${world.ids.device}/commands?cursor=${cursor(day, '\u0000')}`),
      ],
      [
        'a NUL in a token name',
        post(
          '/api/v1/me/tokens',
          { name: 'a\u0000b', scopes: ['read'], expiresAt: '2099-01-01T00:00:00Z' },
          world.headers.user,
        ),
      ],
      [
        'a NUL in a metrics key',
        post('/api/v1/results', {
          service: 'benchmark',
          metrics: { score: 1, 'k\u0000': 1 },
          executedAt: day,
        }),
      ],
      // an unpaired surrogate ("\ud800" in JSON) reached a jsonb column: 500
      [
        'an unpaired surrogate in heartbeat metrics',
        post('/api/v1/agent/heartbeat', '{"metrics":{"t":"\\ud800"}}', world.headers.device),
      ],
      // ValidateNested let an array stand for an object, which the service could not save: 500
      [
        'a preference that is an array',
        {
          method: 'PUT',
          path: '/api/v1/me/notification-preferences',
          headers: { ...world.headers.user, 'Content-Type': 'application/json' },
          body: '{"preferences":[[]]}',
        },
      ],
      [
        'ssh settings that are an array',
        post('/api/v1/devices', {
          name: 'fuzz-ssh',
          kind: 'hpc',
          runner: 'ssh',
          services: ['*'],
          slots: 1,
          ssh: [],
        }),
      ],
      [
        'a NUL in an entitlement rule',
        post('/api/v1/admin/entitlement-rules', {
          entitlement: 'a\u0000b',
          match: 'exact',
          role: 'admin',
        }),
      ],
      [
        'a NUL in a job input (JSON)',
        post(
          '/api/v1/jobs',
          { service: 'echo', inputs: { message: 'a\u0000b' } },
          world.headers.user,
        ),
      ],
      [
        'a NUL in a job input (form)',
        {
          method: 'POST',
          path: '/api/v1/jobs',
          headers: { ...world.headers.user, 'Content-Type': form.contentType },
          body: form.body,
        },
      ],
    ];
    expect(await breaches(cases, true)).toEqual([]);
  });

  describe('multipart submissions (POST /api/v1/jobs)', () => {
    const submit = (form: { body: Buffer; contentType: string }, contentType = form.contentType) =>
      ({
        method: 'POST',
        path: '/api/v1/jobs',
        headers: { ...world.headers.user, 'Content-Type': contentType },
        body: form.body,
      }) satisfies Call;
    const echo = (extra: Part[] = []) =>
      multipart([{ name: 'service', body: 'echo' }, { name: 'message', body: 'hi' }, ...extra]);

    it('refuses malformed forms with a 4xx problem', async () => {
      const ok = echo();
      const cases: Record<string, Call> = {
        'no boundary': submit(ok, 'multipart/form-data'),
        'empty boundary': submit(ok, 'multipart/form-data; boundary='),
        'another boundary': submit(ok, 'multipart/form-data; boundary=somethingelse'),
        'boundary of 200 characters': submit(
          multipart([{ name: 'service', body: 'echo' }], { boundary: 'b'.repeat(200) }),
        ),
        'empty body': submit({ body: Buffer.alloc(0), contentType: ok.contentType }),
        'no closing boundary': submit(
          multipart(
            [
              { name: 'service', body: 'echo' },
              { name: 'message', body: 'hi' },
            ],
            {
              noClose: true,
            },
          ),
        ),
        'cut inside a file': submit(
          multipart(
            [
              { name: 'service', body: 'echo' },
              { name: 'message', body: 'hi' },
              { name: 'file', filename: 'a.txt', body: 'x'.repeat(5000) },
            ],
            { truncate: 3000 },
          ),
        ),
        'a part header of 200 KB': submit(
          echo([
            {
              name: 'file',
              filename: 'a.txt',
              body: 'x',
              headers: [`X-Junk: ${'a'.repeat(200_000)}`],
            },
          ]),
        ),
        '300 fields': submit(
          multipart([
            { name: 'service', body: 'echo' },
            ...Array.from({ length: 300 }, (_, i) => ({ name: `f${i}`, body: 'x' })),
          ]),
        ),
        '60 files': submit(
          multipart([
            { name: 'service', body: 'echo' },
            ...Array.from({ length: 60 }, (_, i) => ({
              name: 'file',
              filename: `${i}.txt`,
              body: 'x',
            })),
          ]),
        ),
        'a file before the service': submit(
          multipart([
            { name: 'file', filename: 'a.txt', body: 'x' },
            { name: 'service', body: 'echo' },
          ]),
        ),
        'no service': submit(multipart([{ name: 'message', body: 'hi' }])),
        'an unknown service': submit(multipart([{ name: 'service', body: '../../etc' }])),
        'a service nobody is entitled to': submit(
          multipart([{ name: 'service', body: 'restricted-bench' }]),
        ),
        'the service twice': submit(
          multipart([
            { name: 'service', body: 'nope' },
            { name: 'service', body: 'echo' },
            { name: 'message', body: 'hi' },
          ]),
        ),
        'a file for a string input': submit(
          multipart([
            { name: 'service', body: 'echo' },
            { name: 'message', filename: 'm.txt', body: 'hi' },
          ]),
        ),
        'an unknown input': submit(echo([{ name: 'nope', body: '1' }])),
        'a message of 1.5 MB': submit(
          multipart([
            { name: 'service', body: 'echo' },
            { name: 'message', body: 'x'.repeat(1_500_000) },
          ]),
        ),
        'a file over its 10 MiB cap': submit(
          echo([{ name: 'file', filename: 'big.bin', body: Buffer.alloc(10 * MB + 1) }]),
        ),
        'a file name with .., NUL and RTL': submit(
          echo([
            { name: 'file', filename: '../../\u202Eevil\u0000.txt', body: 'x' },
            { name: 'nope', body: 'makes it a 400' },
          ]),
        ),
        'targets that are not devices': submit(
          echo([{ name: 'targets', body: JSON.stringify(['not-a-uuid', -1]) }]),
        ),
        'a non-admin priority': submit(echo([{ name: 'priority', body: '99999999999' }])),
        'an Idempotency-Key that is not printable ASCII': {
          ...submit(ok),
          headers: { ...submit(ok).headers, 'Idempotency-Key': 'caf\xe9 \x80\xff' },
        },
      };
      // The part-header cut: the body ends in the middle of a Content-Disposition line.
      const cut = echo();
      cases['cut inside the part headers'] = submit({
        body: cut.body.subarray(0, cut.body.indexOf('name="message"') + 5),
        contentType: cut.contentType,
      });
      const nameless = multipart([{ name: 'service', body: 'echo' }]);
      cases['a part without a name'] = submit({
        body: Buffer.from(
          nameless.body
            .toString()
            .replace(
              'Content-Disposition: form-data; name="service"',
              'Content-Disposition: form-data',
            ),
        ),
        contentType: nameless.contentType,
      });
      expect(await breaches(Object.entries(cases), true)).toEqual([]);
      await noTempFiles();
      await expectAlive();
    }, 60_000);

    it('refuses evil payload archives with a 4xx problem, leaving no scratch files', async () => {
      const cases = Object.entries(evilArchives(LIMITS)).map(([name, archive]): [string, Call] => [
        name,
        submit(
          multipart([
            { name: 'service', body: 'echo' },
            { name: 'payload', filename: 'payload.tar.gz', body: archive },
          ]),
        ),
      ]);
      expect(await breaches(cases, true)).toEqual([]);
      expect(entries(join(app.config.varDir, 'tmp'))).toEqual([]);
      await noTempFiles();
      await expectAlive();
    }, 60_000);

    it('stays up when a client drops an upload half-way, and keeps nothing of it', async () => {
      const before = entries(jobsDir()).length;
      const form = echo([{ name: 'file', filename: 'a.bin', body: Buffer.alloc(4 * MB) }]);
      await dropHalfWay('/api/v1/jobs', world.headers.user, form);
      await waitUntil('the dropped upload to be removed', () =>
        Promise.resolve(entries(jobsDir()).length === before && entries(tempDir()).length === 0),
      );
      await expectAlive();
    });
  });

  describe('agent completions (POST /api/v1/agent/jobs/:id/complete)', () => {
    it('refuses malformed completions with a 4xx problem; the job stays running', async () => {
      const id = await world.runningJob();
      const complete = (form: { body: Buffer | string; contentType: string }): Call => ({
        method: 'POST',
        path: `/api/v1/agent/jobs/${id}/complete`,
        headers: { ...world.headers.device, 'Content-Type': form.contentType },
        body: form.body,
      });
      const metrics = (body: string | Buffer, filename?: string) =>
        multipart([{ name: 'metrics', body, filename }]);
      const cases: Record<string, Call> = {
        'JSON instead of multipart': complete({
          body: '{"metrics":{"score":1}}',
          contentType: 'application/json',
        }),
        'no boundary': complete({ body: 'x', contentType: 'multipart/form-data' }),
        'cut in the middle': complete(
          multipart([{ name: 'result', filename: 'r.tar.gz', body: Buffer.alloc(5000, 1) }], {
            truncate: 2000,
          }),
        ),
        'an unknown part': complete(multipart([{ name: 'surprise', body: 'x' }])),
        'an unknown file part': complete(
          multipart([{ name: 'surprise', filename: 'x', body: 'x' }]),
        ),
        'metrics not JSON': complete(metrics('{nope')),
        'metrics an array': complete(metrics('[1]')),
        'metrics over 1 MiB as a field': complete(metrics(`{"a":"${'x'.repeat(MB)}"}`)),
        'metrics over 1 MiB as a file': complete(metrics(`{"a":"${'x'.repeat(MB)}"}`, 'm.json')),
        'metrics against the result schema': complete(metrics('{"score":"high"}')),
        'metrics with a NUL': complete(metrics('{"score":1,"name":"a\\u0000b"}')),
        'a result that is not gzip': complete(
          multipart([
            { name: 'metrics', body: '{"score":1}' },
            { name: 'result', filename: 'r.tar.gz', body: 'plain text' },
          ]),
        ),
        'a part header of 200 KB': complete(
          multipart([{ name: 'metrics', body: '{}', headers: [`X-Junk: ${'a'.repeat(200_000)}`] }]),
        ),
      };
      expect(await breaches(Object.entries(cases), true)).toEqual([]);
      const job = await call(base, {
        method: 'GET',
        path: `/api/v1/jobs/${id}`,
        headers: world.headers.user,
      });
      expect((job.json as { status: string }).status).toBe('running');
      await noTempFiles();
      await expectAlive();
    }, 60_000);

    it('stays up when an agent drops a result upload half-way, and keeps nothing of it', async () => {
      const id = await world.runningJob();
      const form = multipart([
        { name: 'metrics', body: '{"score":1}' },
        { name: 'result', filename: 'r.tar.gz', body: Buffer.alloc(MB, 0x1f) },
      ]);
      await dropHalfWay(`/api/v1/agent/jobs/${id}/complete`, world.headers.device, form);
      await noTempFiles();
      await expectAlive();
    });
  });

  it('answers generated requests to every operation with no 5xx, and every 4xx a problem', async () => {
    const operations = operationsOf(doc);
    const failures: string[] = [];
    const durations: string[] = [];
    for (const op of operations) {
      const started = Date.now();
      const details = await fc.check(
        fc.asyncProperty(requestsFor(doc, op, world), async (req: FuzzRequest) => {
          const why = breach(await send(req));
          if (why) {
            throw new Error(`${why}\n  request: ${describeRequest(req)}`);
          }
        }),
        { seed: SEED, numRuns: RUNS },
      );
      if (details.failed) {
        const error = details.errorInstance;
        failures.push(
          `${op.key} (replay: seed ${details.seed}, path "${details.counterexamplePath}"): ` +
            (error instanceof Error ? error.message : String(error)),
        );
      }
      await expectAlive();
      durations.push(`${op.key} ${Date.now() - started} ms`);
    }
    if (process.env.FUZZ_VERBOSE) {
      console.log(durations.join('\n'));
    }
    if (failures.length > 0) {
      console.log(
        `fuzz failures with FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}:\n${failures.join('\n\n')}`,
      );
    }
    expect(failures).toEqual([]);
  }, 240_000);

  it('keeps its heap flat over rounds of the same generated requests', async () => {
    // The app runs in this process, so its heap is this heap. Measured after full collections
    // (V8's own `gc`, switched on at run time when jest was not started with --expose-gc), the
    // live heap varies by well under a megabyte from round to round; what a leak adds grows
    // with every round instead. RSS is not used: it keeps pages V8 no longer uses.
    const gc = collector();
    const requests = operationsOf(doc).flatMap((op) =>
      fc.sample(requestsFor(doc, op, world), { seed: SEED, numRuns: 5 }),
    );
    const heapAfterGc = () => {
      gc();
      gc();
      return process.memoryUsage().heapUsed;
    };
    const round = async () => {
      for (const req of requests) {
        await send(req);
      }
    };
    // Warm-up: connections, caches, and the code of every path these requests take, which V8
    // compiles and optimises over the first rounds.
    await round();
    await round();
    const baseline = heapAfterGc();
    const samples: number[] = [];
    for (let i = 0; i < 3; i++) {
      await round();
      samples.push(heapAfterGc());
    }
    const growth = Math.max(...samples) - baseline;
    console.log(
      `heap after GC: ${(baseline / MB).toFixed(1)} MiB, then ${samples
        .map((s) => (s / MB).toFixed(1))
        .join(', ')} MiB over ${samples.length} rounds of ${requests.length} requests`,
    );
    // 6 MiB over ~1000 requests: keeping ~6 KiB of each request alive (its body, its request
    // object) fails this; the heap's own drift after warm-up stays near 1 MiB.
    expect(growth).toBeLessThan(6 * MB);
    await expectAlive();
  }, 120_000);
});
