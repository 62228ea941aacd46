import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import request from 'supertest';
import { RetentionService } from '../../src/jobs/retention.service';
import { bearer, mintAccessToken } from '../support/auth';
import { baseUrl, followEvents } from '../support/jobs';
import { waitUntil } from '../support/recovery';
import { testServicesDir } from '../support/services.fixture';
import { startTestApp, TestApp } from '../support/test-app';

const TWO_HOURS_AGO = new Date(Date.now() - 2 * 3600_000);

/** Writes files (creating their folders), as a killed process would have left them. */
function leave(root: string, files: string[]): void {
  for (const file of files) {
    mkdirSync(join(root, file, '..'), { recursive: true });
    writeFileSync(join(root, file), 'left behind');
  }
}

/** Makes everything under `path` (itself included) last changed two hours ago. */
function age(path: string): void {
  if (statSync(path).isDirectory()) {
    for (const entry of readdirSync(path)) {
      age(join(path, entry));
    }
  }
  utimesSync(path, TWO_HOURS_AGO, TWO_HOURS_AGO);
}

/** A pid no process has any more. */
function deadPid(): number {
  return spawnSync('true').pid;
}

describe(`${RetentionService.name}: the orphan sweep`, () => {
  let app: TestApp;
  let http: Server;
  let alice: Record<string, string>;

  beforeAll(async () => {
    app = await startTestApp({ SERVICES_DIR: testServicesDir(), ROLE: 'all' });
    await app.app.listen(0, '127.0.0.1');
    http = app.app.getHttpServer();
    alice = bearer(
      await mintAccessToken(app, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 }),
    );
  });
  afterAll(() => app.close());

  it('removes what killed requests and runs left an hour ago, and nothing else', async () => {
    const storage = app.config.storageDir;
    // A real job, run to its end: its files are old, but its row holds them.
    const { body } = await request(http)
      .post('/api/v1/jobs')
      .set(alice)
      .field('service', 'echo')
      .field('message', 'kept')
      .attach('file', Buffer.from('some bytes'), 'notes.txt')
      .expect(201);
    const kept = body.id as string;
    await followEvents(`${baseUrl(http)}/api/v1/jobs/${kept}/events`, alice);
    age(join(storage, 'jobs', kept));
    const work = join(app.varDir, 'work');
    await waitUntil('the run to remove its work directory', () =>
      Promise.resolve(!existsSync(join(work, `${kept}.1`))),
    );

    // Storage: the first file of an upload whose API was killed (no job row), an hour ago...
    const [orphan, fresh, writing] = [randomUUID(), randomUUID(), randomUUID()];
    leave(storage, [`jobs/${orphan}/inputs/a/first.bin`, `jobs/${orphan}/inputs/b/second.bin`]);
    age(join(storage, 'jobs', orphan));
    // ...and what may be a submission in flight: files of a minute ago, or one still growing.
    leave(storage, [`jobs/${fresh}/inputs/a/first.bin`, `jobs/${writing}/inputs/a/first.bin`]);
    age(join(storage, 'jobs', writing));
    leave(storage, [`jobs/${writing}/inputs/b/second.bin`]);
    // Not a job's prefix: never labgate's to judge.
    leave(storage, ['jobs/not-a-job/notes.txt']);
    age(join(storage, 'jobs', 'not-a-job'));

    // VAR_DIR/tmp: a payload unpacked by a killed API, an agent's inputs packed a minute ago,
    // and a scratch folder made long ago that is still being written to.
    const tmp = join(app.varDir, 'tmp');
    leave(tmp, [`payload-${orphan}/main.json`, `payload-${orphan}/scan/a.nii`, 'stray.part']);
    age(join(tmp, `payload-${orphan}`));
    age(join(tmp, 'stray.part'));
    leave(tmp, [`agent-inputs-${fresh}/inputs.json`]);
    leave(tmp, [`payload-${writing}/main.json`]);
    age(join(tmp, `payload-${writing}`));
    leave(tmp, [`payload-${writing}/big.nii`]);

    // VAR_DIR/work: a run whose worker and program are gone, one whose worker lives on, and
    // one that recorded no program (being prepared, or an SSH run waiting on its cluster).
    const pids = (worker: number) => `${worker} ${deadPid()}\n`;
    leave(work, [`${orphan}.1/outputs/x`, `${fresh}.1/outputs/x`, `${writing}.3/inputs.json`]);
    writeFileSync(join(work, `${orphan}.1`, '.labgate-pids'), pids(deadPid()));
    writeFileSync(join(work, `${fresh}.1`, '.labgate-pids'), pids(process.ppid));
    for (const dir of [`${orphan}.1`, `${fresh}.1`, `${writing}.3`]) {
      age(join(work, dir));
    }

    const retention = app.app.get(RetentionService);
    expect(await retention.run()).toBe(0); // nothing past its retention

    const jobDirs = readdirSync(join(storage, 'jobs')).sort();
    expect(jobDirs).toEqual([kept, fresh, writing, 'not-a-job'].sort());
    expect(existsSync(join(storage, 'jobs', kept, 'result.tar.gz'))).toBe(true);
    expect(readdirSync(tmp).sort()).toEqual([`agent-inputs-${fresh}`, `payload-${writing}`]);
    expect(readdirSync(work).sort()).toEqual([`${fresh}.1`, `${writing}.3`].sort());

    // The files in flight, once an hour old too, go the same way.
    age(join(storage, 'jobs', writing));
    age(join(tmp, `payload-${writing}`));
    expect(await retention.sweepOrphans()).toEqual({
      storage: [`jobs/${writing}/`],
      local: [`tmp/payload-${writing}`],
    });
    const job = await request(http).get(`/api/v1/jobs/${kept}`).set(alice).expect(200);
    expect(job.body.status).toBe('succeeded');
  });
});
