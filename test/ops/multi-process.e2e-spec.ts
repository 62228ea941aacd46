import { join } from 'node:path';
import { checkInvariants } from '../support/chaos/invariants';
import { ApiProcess, call, Installation, submit, within } from '../support/chaos/installation';
import { addTallyService, ledgerCounts, TALLY } from '../support/chaos/services';
import { readEvents, SseEvent } from '../support/jobs';
import type { LabgateProcess } from '../support/labgate-process';
import { waitUntil } from '../support/recovery';

const JOBS = 200;
/** Submissions in flight at once (alternating between the two APIs). */
const PARALLEL = 8;
const ADMIN = 'urn:mace:labgate.test:multi-process-admin';

describe('several API and worker processes on one PostgreSQL and one Redis', () => {
  let lab: Installation;
  let apis: ApiProcess[];
  let workers: LabgateProcess[];
  let ledger: string;

  beforeAll(async () => {
    lab = await Installation.create({
      // Four slots on the workers' `local` device: both workers take from its queue.
      env: { WORKER_CONCURRENCY: '4', ADMIN_ENTITLEMENTS: ADMIN },
      services: (dir) => {
        ledger = join(dir, 'ledger.txt');
        addTallyService(dir, ledger);
      },
    });
    const started = await Promise.all([
      lab.startApi(),
      lab.startApi(),
      lab.startWorker(),
      lab.startWorker(),
    ]);
    apis = started.slice(0, 2) as ApiProcess[];
    workers = started.slice(2) as LabgateProcess[];
  }, 180_000);
  afterAll(async () => {
    await lab?.dispose();
  }, 60_000);

  it('runs each of 200 jobs exactly once; each stream, on the other API, sees it end', async () => {
    const alice = await lab.user('alice');
    const ids: string[] = new Array<string>(JOBS);
    const streams: Array<Promise<SseEvent[]>> = new Array<Promise<SseEvent[]>>(JOBS);
    // Submit on API i % 2, follow on the other: what a worker publishes reaches every API.
    let next = 0;
    const submitter = async () => {
      while (next < JOBS) {
        const i = next++;
        const id = await submit(apis[i % 2], alice, TALLY, { tag: `job-${i}` });
        ids[i] = id;
        const events: SseEvent[] = [];
        streams[i] = readEvents(`${apis[(i + 1) % 2].url}/api/v1/jobs/${id}/events`, alice, (e) =>
          events.push(e),
        ).then(() => events);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, submitter));

    // Every stream ends by itself once its job is final (90 s is far more than 200 jobs need).
    const seen = await within(Promise.all(streams), 90_000, 'every stream to end').catch(
      (err: Error) => {
        throw new Error(`${err.message}\n${lab.outputs()}`);
      },
    );

    const finals = seen.map((events) => events.filter((e) => e.event === 'state').at(-1)?.data);
    expect(finals.map((f) => f?.state)).toEqual(ids.map(() => 'succeeded'));
    // Most streams opened while their job still waited: they saw it change live, not a snapshot.
    const live = seen.filter((events) => events[0].data.state !== 'succeeded').length;
    expect(live).toBeGreaterThan(JOBS / 2);

    // Exactly once: each program ran once (the ledger), each job moved through its states once.
    const counts = ledgerCounts(ledger);
    expect(counts.size).toBe(JOBS);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    const rows = await lab.query<{
      id: string;
      states: string[];
      attempts: number;
      worker: string;
    }>(
      `select j.id, j.attempts, j.worker,
              array_agg(e.state order by e.id) as states
         from job j join job_event e on e.job_id = j.id
        group by j.id`,
    );
    expect(rows).toHaveLength(JOBS);
    for (const row of rows) {
      expect({ id: row.id, states: row.states, attempts: row.attempts }).toEqual({
        id: row.id,
        states: ['queued', 'assigned', 'running', 'succeeded'],
        attempts: 1,
      });
    }
    // Both workers took part.
    const ranOn = new Set(rows.map((r) => Number(r.worker.split(':').pop())));
    expect([...ranOn].sort()).toEqual(workers.map((w) => w.child.pid).sort());

    await lab.settle();
    const census = await checkInvariants({
      databaseUrl: lab.databaseUrl,
      storageDir: lab.storageDir,
      submitted: ids,
    });
    expect(census.problems).toEqual([]);
    expect(census.byState).toEqual({ succeeded: JOBS });
    expect(census.blobs).toMatchObject({ result: JOBS, archive: JOBS });
  }, 150_000);

  it('refuses on every API a user an admin blocked on one, though each kept the user in memory', async () => {
    const admin = await lab.user('root', [ADMIN]);
    const bob = await lab.user('bob');
    const me = (api: ApiProcess) => call(api, 'GET', '/api/v1/me', bob);
    // Twice on each API: the second answer comes from the user kept there.
    for (const api of [...apis, ...apis]) {
      expect((await me(api)).status).toBe(200);
    }
    const id = (await me(apis[0])).body.id as string;
    const blocked = await call(apis[0], 'PATCH', `/api/v1/admin/users/${id}`, admin, {
      blocked: true,
    });
    expect(blocked.status).toBe(200);
    // At once on the API that blocked him; on the other once PostgreSQL has notified it,
    // well before the minute a kept user may otherwise last.
    expect((await me(apis[0])).status).toBe(401);
    await waitUntil('the other API to refuse him', async () => (await me(apis[1])).status === 401, {
      timeoutMs: 5_000,
    });
  });
});
