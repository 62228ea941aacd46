import { checkInvariants } from '../support/chaos/invariants';
import { ApiProcess, call, Installation, submit } from '../support/chaos/installation';
import { PrivatePostgres } from '../support/chaos/private-postgres';
import { addTallyService, TALLY } from '../support/chaos/services';
import type { LabgateProcess } from '../support/labgate-process';
import { waitUntil } from '../support/recovery';

/** No request may hang while the database is away: an answer, right or wrong, within this. */
const ANSWER_WITHIN_MS = 10_000;

interface Answer {
  what: string;
  status: number;
  type: string;
  ms: number;
  body: Record<string, unknown>;
}

describe('chaos: PostgreSQL stopped and started under load', () => {
  let pg: PrivatePostgres;
  let lab: Installation;
  let api: ApiProcess;
  let worker: LabgateProcess;
  let alice: Record<string, string>;

  beforeAll(async () => {
    pg = await PrivatePostgres.start();
    lab = await Installation.create({
      postgres: pg,
      env: { WORKER_CONCURRENCY: '2', STALLED_JOB_CHECK_SECONDS: '1' },
      services: (dir) => addTallyService(dir, `${dir}/ledger.txt`),
    });
    [api, worker, alice] = await Promise.all([lab.startApi(), lab.startWorker(), lab.user()]);
  }, 180_000);
  afterAll(async () => {
    await lab?.dispose();
    await pg?.destroy();
  }, 60_000);

  /** One request of the load, timed; a hang becomes a failed answer (status 0). */
  const ask = async (what: string, method: string, path: string, body?: unknown) => {
    const started = Date.now();
    try {
      const res = await call(api, method, path, alice, body, ANSWER_WITHIN_MS);
      return { what, ...res, ms: Date.now() - started } satisfies Answer;
    } catch (err) {
      return {
        what,
        status: 0,
        type: '',
        body: { error: (err as Error).message },
        ms: Date.now() - started,
      } satisfies Answer;
    }
  };

  it('answers 503 problems while it is down, recovers by itself, finishes every job', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      ids.push(await submit(api, alice, TALLY, { tag: `before-${i}`, seconds: 2 }));
    }
    await waitUntil(
      'two jobs to run',
      async () => {
        const [row] = await lab.query<{ n: number }>(
          `select count(*)::int as n from job where state = 'running' and progress >= 10`,
        );
        return row.n === 2;
      },
      { timeoutMs: 30_000, intervalMs: 25 },
    );

    // Load: reads and submissions keep coming, before, during and after the stop.
    const answers: Answer[] = [];
    let loading = true;
    const load = async (n: number) => {
      while (loading) {
        const id = ids[n % ids.length];
        answers.push(
          ...(await Promise.all([
            ask('read', 'GET', `/api/v1/jobs/${id}`),
            ask('list', 'GET', '/api/v1/jobs?limit=5'),
            ask('submit', 'POST', '/api/v1/jobs', { service: TALLY, inputs: { tag: `load-${n}` } }),
          ])),
        );
        n++;
        await new Promise((r) => setTimeout(r, 25)); // a steady load, not a flood
      }
    };
    const loaders = [load(0), load(3)];
    await waitUntil('some answers under load', () => Promise.resolve(answers.length >= 6));

    await pg.stop('fast');
    const downSince = answers.length;
    // While it is down: every answer is a 503 problem, quickly; liveness stays up.
    await waitUntil('answers while the database is down', () =>
      Promise.resolve(answers.length - downSince >= 12),
    );
    const live = await call(api, 'GET', '/health/live', {});
    const ready = await call(api, 'GET', '/health/ready', {});
    // Let the running programs end while PostgreSQL is away: the worker must record it later.
    await new Promise((r) => setTimeout(r, 2_500));
    const duringDown = answers.slice(downSince);
    await pg.start();
    const upSince = answers.length;
    await waitUntil(
      'the API to answer from the database again',
      () =>
        Promise.resolve(answers.slice(upSince).some((a) => a.what === 'read' && a.status === 200)),
      { timeoutMs: 30_000 },
    );
    await waitUntil('more answers after the restart', () =>
      Promise.resolve(answers.length - upSince >= 12),
    );
    loading = false;
    await Promise.all(loaders);

    expect(live.status).toBe(200);
    expect(ready).toMatchObject({ status: 503, type: expect.stringContaining('problem+json') });
    // Requests caught mid-stop may still succeed; none may be a 500, hang, or lose its answer.
    const wrong = duringDown.filter(
      (a) =>
        ![200, 201, 503].includes(a.status) ||
        a.ms >= ANSWER_WITHIN_MS ||
        (a.status === 503 &&
          !(a.type.includes('application/problem+json') && a.body.status === 503 && a.body.detail)),
    );
    expect(wrong).toEqual([]);
    expect(duringDown.filter((a) => a.status === 503).length).toBeGreaterThanOrEqual(10);
    const refused = new Set(duringDown.filter((a) => a.status === 503).map((a) => a.what));
    expect([...refused].sort()).toEqual(['list', 'read', 'submit']);
    // The programs that ended meanwhile had their outcome recorded once the database was back.
    expect(worker.output).toMatch(/outcome waits for the database/);
    // Once it is back, everything answers again, with no process restarted.
    const afterwards = answers.slice(upSince).slice(-6);
    expect(afterwards.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 201, 201]);
    lab.expectAllAlive();
    // Every job accepted (before, during or after) ends; none is lost or ended twice.
    const accepted = answers
      .filter((a) => a.what === 'submit' && a.status === 201)
      .map((a) => a.body.id as string);
    await lab.settle(60_000);
    const census = await checkInvariants({
      databaseUrl: lab.databaseUrl,
      storageDir: lab.storageDir,
      submitted: [...ids, ...accepted],
    });
    expect(census.problems).toEqual([]);
    expect(census.byState).toEqual({ succeeded: census.jobs });
  }, 150_000);
});
