import { checkInvariants } from '../support/chaos/invariants';
import { ApiProcess, call, Installation, submit, within } from '../support/chaos/installation';
import { PrivateRedis } from '../support/chaos/private-redis';
import { addTallyService, TALLY } from '../support/chaos/services';
import { followEvents } from '../support/jobs';
import type { LabgateProcess } from '../support/labgate-process';
import { waitUntil } from '../support/recovery';

/** The job states PostgreSQL holds now, counted. */
async function states(lab: Installation): Promise<Record<string, number>> {
  const rows = await lab.query<{ state: string; n: number }>(
    'select state, count(*)::int as n from job group by state',
  );
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

describe('chaos: Redis loses everything while jobs are queued and running', () => {
  let redis: PrivateRedis;
  let lab: Installation;
  let api: ApiProcess;
  let worker: LabgateProcess;
  let alice: Record<string, string>;

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    lab = await Installation.create({
      redis,
      env: { WORKER_CONCURRENCY: '2', STALLED_JOB_CHECK_SECONDS: '1' },
      services: (dir) => addTallyService(dir, `${dir}/ledger.txt`),
    });
    [api, worker, alice] = await Promise.all([lab.startApi(), lab.startWorker(), lab.user()]);
  }, 180_000);
  afterAll(async () => {
    await lab?.dispose();
    await redis?.stop();
  }, 60_000);

  /** Ten jobs of `seconds` each, and the moment some run while the others wait. */
  const submitBatch = async (batch: string, seconds: number) => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      ids.push(await submit(api, alice, TALLY, { tag: `${batch}-${i}`, seconds }));
    }
    await waitUntil(
      'jobs to run while others wait',
      async () => {
        const now = await states(lab);
        return (now.running ?? 0) >= 1 && (now.queued ?? 0) + (now.assigned ?? 0) >= 1;
      },
      { timeoutMs: 30_000, intervalMs: 25 },
    );
    return ids;
  };

  const expectAllDone = async (ids: string[]) => {
    await lab.settle(60_000);
    const census = await checkInvariants({
      databaseUrl: lab.databaseUrl,
      storageDir: lab.storageDir,
      submitted: ids,
    });
    expect(census.problems).toEqual([]);
    expect(census.byState).toEqual({ succeeded: census.jobs });
    // The same processes did it all: nothing had to be restarted.
    lab.expectAllAlive();
  };

  it('finishes every job after a restart (SHUTDOWN NOSAVE), no process restarted', async () => {
    const ids = await submitBatch('restart', 2);
    // Streams opened before the restart must see their jobs end, even a job whose end could
    // not be published (Redis was away): PostgreSQL has it.
    const streams = ids.map((id) =>
      followEvents(`${api.url}/api/v1/jobs/${id}/events`, alice).then(
        (events) => events.filter((e) => e.event === 'state').at(-1)?.data.state,
      ),
    );
    // The moment to stop Redis: every waiting job's stream is subscribed (the API listens on
    // one channel per job), and a job started less than 1.5 s ago whose stream is subscribed
    // too (its channel then has two listeners: the API, and the worker that runs it, which
    // listens for a cancel just before starting the two-second program). That job ends while
    // Redis is away.
    const channel = (id: string) => `${lab.prefix}:job-updates:${id}`;
    const ending = await waitUntil(
      'the streams to be subscribed while a program has just started',
      async () => {
        const jobs = await lab.query<{ id: string; state: string; fresh: boolean }>(
          `select id, state, started_at > now() - interval '1.5 seconds' as fresh
             from job where id = any($1)`,
          [ids],
        );
        const counts = await redis.subscribers(ids.map(channel));
        const listening = (id: string) => counts.get(channel(id)) ?? 0;
        const waiting = jobs.filter((j) => j.state === 'queued' || j.state === 'assigned');
        const fresh = jobs.find((j) => j.state === 'running' && j.fresh && listening(j.id) >= 2);
        return waiting.every((j) => listening(j.id) >= 1) && fresh?.id;
      },
      { timeoutMs: 30_000, intervalMs: 20 },
    );
    await redis.shutdown();
    // Submissions go on while Redis is away: PostgreSQL is the truth, placement comes later.
    for (let i = 0; i < 3; i++) {
      ids.push(await submit(api, alice, TALLY, { tag: `restart-late-${i}`, seconds: 1 }));
    }
    await waitUntil(
      'a running job to end while Redis is away',
      async () =>
        (await lab.query(`select 1 from job where id = $1 and state = 'succeeded'`, [ending]))
          .length > 0,
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    await redis.start();
    const ends = await within(Promise.all(streams), 30_000, 'the streams opened before');
    expect(ends).toEqual(streams.map(() => 'succeeded'));
    // Live updates flow again through the reconnected pub/sub: a new job's stream sees it end.
    const after = await submit(api, alice, TALLY, { tag: 'restart-after' });
    ids.push(after);
    const events = await within(
      followEvents(`${api.url}/api/v1/jobs/${after}/events`, alice),
      30_000,
      'the stream of a job submitted after the restart',
    );
    expect(events.filter((e) => e.event === 'state').at(-1)?.data.state).toBe('succeeded');
    await expectAllDone(ids);
    await expectRetentionScheduled();
    const ready = await call(api, 'GET', '/health/ready', {});
    expect(ready.status).toBe(200);
  }, 150_000);

  it('finishes every job after FLUSHALL', async () => {
    const ids = await submitBatch('flush', 1);
    await redis.flushAll();
    await expectAllDone(ids);
    await expectRetentionScheduled();
    expect(worker.child.exitCode).toBeNull();
  }, 150_000);

  /** The worker's housekeeping schedule (retention) was in Redis: it is back too. */
  const expectRetentionScheduled = () =>
    waitUntil(
      'the retention schedule to be back in Redis',
      async () => (await redis.keys(`${lab.prefix}:jobs:repeat*`)).length > 0,
      { timeoutMs: 30_000, intervalMs: 200 },
    );
});
