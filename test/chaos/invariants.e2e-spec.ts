import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { Client } from 'pg';
import request from 'supertest';
import { bearer, mintAccessToken } from '../support/auth';
import { checkInvariants } from '../support/chaos/invariants';
import { waitUntil } from '../support/recovery';
import { testServicesDir } from '../support/services.fixture';
import { startTestApp, TestApp } from '../support/test-app';

/** The chaos suite's verdicts rest on this check: it must see each kind of damage. */
describe(checkInvariants.name, () => {
  let app: TestApp;
  let ids: string[];

  beforeAll(async () => {
    app = await startTestApp({ SERVICES_DIR: testServicesDir(), ROLE: 'all' });
    const http: Server = app.app.getHttpServer();
    const alice = bearer(await mintAccessToken(app, { sub: 'alice' }));
    ids = [];
    for (const message of ['one', 'two']) {
      const res = await request(http)
        .post('/api/v1/jobs')
        .set(alice)
        .send({ service: 'echo', inputs: { message } })
        .expect(201);
      ids.push(res.body.id as string);
    }
    await waitUntil(
      'both jobs to succeed and have their results',
      async () => {
        const census = await check();
        return census.byState.succeeded === 2 && census.problems.length === 0;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
  }, 60_000);
  afterAll(async () => {
    await app?.close();
  });

  const check = (submitted = ids) =>
    checkInvariants({
      databaseUrl: app.config.database.url!,
      storageDir: app.config.storageDir,
      submitted,
    });

  it('finds nothing wrong with jobs that ran normally, and counts their blobs', async () => {
    const census = await check();
    expect(census).toMatchObject({
      jobs: 2,
      byState: { succeeded: 2 },
      blobs: { result: 2, archive: 2 },
      references: { result: 2, archive: 2 },
      problems: [],
    });
  });

  it('reports lost, doubled and unfinished jobs; orphaned, partial, altered, missing blobs', async () => {
    const [a, b] = ids;
    const storage = app.config.storageDir;
    const stranger = '00000000-0000-4000-8000-000000000000';
    rmSync(join(storage, 'jobs', a, 'result.tar.gz'));
    appendFileSync(join(storage, 'jobs', b, 'result.tar.gz'), 'tampered');
    mkdirSync(join(storage, 'jobs', stranger, 'inputs', 'file'), { recursive: true });
    writeFileSync(join(storage, 'jobs', stranger, 'inputs', 'file', 'x.bin'), 'no row');
    writeFileSync(join(storage, '.tmp', 'cut-short.part'), 'partial');
    const client = new Client({ connectionString: app.config.database.url! });
    await client.connect();
    try {
      await client.query(
        `insert into job_event (job_id, at, state, previous_state, actor)
         values ($1, now(), 'succeeded', 'succeeded', 'test')`,
        [a],
      );
      await client.query(`update job set state = 'running' where id = $1`, [b]);
    } finally {
      await client.end();
    }

    const { problems } = await check([...ids, stranger]);
    expect(problems).toEqual(
      expect.arrayContaining([
        `job ${stranger} was submitted (201) but has no row`,
        `job ${a} ended 2 times: queued → assigned → running → succeeded → succeeded`,
        `job ${b} did not end: it is running`,
        `job ${b} is running but its last event is succeeded`,
        'partial write left in the storage temp dir: .tmp/cut-short.part',
        `orphaned blob jobs/${stranger}/inputs/file/x.bin: there is no job ${stranger}`,
        `result jobs/${b}/result.tar.gz differs from the size and sha256 job ${b} records`,
        `missing blob jobs/${a}/result.tar.gz: job ${a} records a result`,
        '1 result blob(s) in storage, 2 in PostgreSQL',
      ]),
    );
  });
});
