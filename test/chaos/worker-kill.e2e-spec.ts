import { join } from 'node:path';
import { checkInvariants } from '../support/chaos/invariants';
import { ApiProcess, Installation, submit } from '../support/chaos/installation';
import { addTallyService, ledgerCounts, TALLY } from '../support/chaos/services';
import { waitUntil } from '../support/recovery';

describe('chaos: a worker killed with SIGKILL while it runs several jobs', () => {
  let lab: Installation;
  let api: ApiProcess;
  let ledger: string;

  beforeAll(async () => {
    lab = await Installation.create({
      // Four jobs at once on the `local` device; a dead worker's jobs are handed out again
      // after a 1 s lock (STALLED_JOB_CHECK_SECONDS) instead of 30 s.
      env: { WORKER_CONCURRENCY: '4', STALLED_JOB_CHECK_SECONDS: '1' },
      services: (dir) => {
        ledger = join(dir, 'ledger.txt');
        addTallyService(dir, ledger);
      },
    });
    api = await lab.startApi();
  }, 180_000);
  afterAll(async () => {
    await lab?.dispose();
  }, 60_000);

  it('finishes every job exactly once on the worker started after it', async () => {
    const [first, alice] = await Promise.all([lab.startWorker(), lab.user('alice')]);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      ids.push(await submit(api, alice, TALLY, { tag: `job-${i}`, seconds: 3 }));
    }
    // Four programs have started (their PROGRESS line is recorded) and none has finished.
    const running = await waitUntil(
      'four jobs to run on the first worker',
      async () => {
        const rows = await lab.query<{ id: string }>(
          `select id from job where state = 'running' and progress >= 10`,
        );
        return rows.length === 4 && rows.map((r) => r.id);
      },
      { timeoutMs: 30_000, intervalMs: 25 },
    );
    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    // PostgreSQL does not know yet: the four still look running.
    const [still] = await lab.query<{ n: number }>(
      `select count(*)::int as n from job where state = 'running' and id = any($1)`,
      [running],
    );
    expect(still.n).toBe(4);

    await lab.startWorker();
    await lab.settle(60_000);

    const rows = await lab.query<{ id: string; states: string[]; reasons: string[] }>(
      `select job_id as id, array_agg(state order by id) as states,
              array_agg(coalesce(reason, '') order by id) as reasons
         from job_event group by job_id`,
    );
    const lost = new Set(running);
    for (const row of rows) {
      if (lost.has(row.id)) {
        // Taken back from the dead worker once, run again, ended once.
        expect(row.states).toEqual(['queued', 'assigned', 'running', 'running', 'succeeded']);
        expect(row.reasons[3]).toMatch(/worker lost during attempt 1/);
      } else {
        expect(row.states).toEqual(['queued', 'assigned', 'running', 'succeeded']);
      }
    }
    // The jobs that never ran on the dead worker ran exactly once; the lost ones at most twice
    // (the dead worker's program may have finished on its own before the new worker ended it).
    const counts = ledgerCounts(ledger);
    ids.forEach((id, i) => {
      const n = counts.get(`job-${i}`) ?? 0;
      if (lost.has(id)) {
        expect(n).toBeGreaterThanOrEqual(1);
        expect(n).toBeLessThanOrEqual(2);
      } else {
        expect(n).toBe(1);
      }
    });

    const census = await checkInvariants({
      databaseUrl: lab.databaseUrl,
      storageDir: lab.storageDir,
      submitted: ids,
    });
    expect(census.problems).toEqual([]);
    expect(census.byState).toEqual({ succeeded: ids.length });
  }, 150_000);
});
