import { checkInvariants } from '../support/chaos/invariants';
import { ApiProcess, call, Installation } from '../support/chaos/installation';
import { PrivatePostgres } from '../support/chaos/private-postgres';
import { addTallyService, TALLY } from '../support/chaos/services';
import { waitUntil } from '../support/recovery';

const CYCLES = 6;
/** Submitters at once; each waits this long between its submissions (the jobs must finish). */
const SUBMITTERS = 3;
const PAUSE_MS = 20;

/**
 * Submissions that meet PostgreSQL stopping at any point of their transaction (before BEGIN,
 * inside it, at COMMIT): each answers 201 or a 503 problem, never a 500 or a hang. Stopped
 * and started several times, at a different moment of the load each time.
 */
describe('chaos: PostgreSQL stopped in the middle of submissions', () => {
  let pg: PrivatePostgres;
  let lab: Installation;
  let api: ApiProcess;
  let alice: Record<string, string>;

  beforeAll(async () => {
    pg = await PrivatePostgres.start();
    lab = await Installation.create({
      postgres: pg,
      env: { WORKER_CONCURRENCY: '4', STALLED_JOB_CHECK_SECONDS: '1' },
      services: (dir) => addTallyService(dir, `${dir}/ledger.txt`),
    });
    [api, , alice] = await Promise.all([lab.startApi(), lab.startWorker(), lab.user()]);
  }, 180_000);
  afterAll(async () => {
    await lab?.dispose();
    await pg?.destroy();
  }, 60_000);

  it('answers every submission 201 or 503, and the accepted jobs all finish once', async () => {
    const accepted: string[] = [];
    const wrong: unknown[] = [];
    let refused = 0;
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      let loading = true;
      const submitting = async (loader: number) => {
        for (let n = 0; loading; n++) {
          const inputs = { tag: `c${cycle}-l${loader}-${n}` };
          try {
            const res = await call(api, 'POST', '/api/v1/jobs', alice, { service: TALLY, inputs });
            if (res.status === 201) {
              accepted.push(res.body.id as string);
            } else if (
              res.status === 503 &&
              res.type.includes('application/problem+json') &&
              res.body.detail
            ) {
              refused++;
            } else {
              wrong.push(res);
            }
          } catch (err) {
            wrong.push({ hung: (err as Error).message });
          }
          await new Promise((r) => setTimeout(r, PAUSE_MS));
        }
      };
      const loaders = Array.from({ length: SUBMITTERS }, (_, i) => submitting(i));
      await new Promise((r) => setTimeout(r, 300 + cycle * 37));
      await pg.stop('fast');
      await new Promise((r) => setTimeout(r, 500));
      await pg.start();
      await waitUntil(
        'the API to be ready again',
        async () => (await call(api, 'GET', '/health/ready', {})).status === 200,
        { timeoutMs: 30_000 },
      );
      await new Promise((r) => setTimeout(r, 200)); // some submissions land while it is up
      loading = false;
      await Promise.all(loaders);
    }

    expect(wrong).toEqual([]);
    expect(refused).toBeGreaterThan(0);
    expect(accepted.length).toBeGreaterThan(CYCLES);
    lab.expectAllAlive();
    await lab.settle(150_000);
    const census = await checkInvariants({
      databaseUrl: lab.databaseUrl,
      storageDir: lab.storageDir,
      submitted: accepted,
    });
    expect(census.problems).toEqual([]);
    expect(census.byState).toEqual({ succeeded: census.jobs });
  }, 300_000);
});
