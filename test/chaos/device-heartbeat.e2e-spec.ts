import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { AgentProcess } from '../support/agent-process';
import { checkInvariants } from '../support/chaos/invariants';
import { ApiProcess, call, Installation, submit } from '../support/chaos/installation';
import { addTallyService, ledgerCounts, TALLY } from '../support/chaos/services';
import { waitUntil } from '../support/recovery';

const ADMIN = 'urn:mace:labgate.test:role=admin';

describe('chaos: a device stops sending heartbeats while it holds claimed jobs', () => {
  let lab: Installation;
  let api: ApiProcess;
  let ledger: string;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    lab = await Installation.create({
      env: {
        ADMIN_ENTITLEMENTS: ADMIN,
        // Agents beat every 2 s (a third of this); a silent one is DOWN after 6 s.
        DEVICE_DOWN_AFTER_SECONDS: '6',
        LOCAL_DEVICE: 'false', // jobs go to the agents only (the worker makes results)
      },
      services: (dir) => {
        ledger = join(dir, 'ledger.txt');
        addTallyService(dir, ledger);
      },
    });
    [api] = await Promise.all([lab.startApi(), lab.startWorker()]);
  }, 180_000);
  afterAll(async () => {
    for (const agent of agents) {
      agent.child.kill('SIGCONT');
    }
    await Promise.all(agents.map((a) => a.stop()));
    await lab?.dispose();
  }, 60_000);

  const startAgent = (token: string) => {
    const agent = new AgentProcess({
      url: api.url,
      token,
      services: lab.servicesDir,
      workDir: mkdtempSync(join(lab.varDir, 'agent-')),
      slots: 2,
    });
    agents.push(agent);
    return agent;
  };

  it('marks it DOWN and has another device finish its jobs, each ending once', async () => {
    const [admin, alice] = await Promise.all([lab.user('root', [ADMIN]), lab.user('alice')]);
    const device = async (name: string) => {
      const res = await call(api, 'POST', '/api/v1/devices', admin, {
        name,
        kind: 'workstation',
        runner: 'agent',
        services: [TALLY],
        slots: 2,
      });
      expect(res.status).toBe(201);
      return { id: res.body.id as string, token: res.body.token as string };
    };
    const silent = await device('silent');
    const spare = await device('spare');
    const first = startAgent(silent.token);

    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push(await submit(api, alice, TALLY, { tag: `job-${i}`, seconds: 3 }));
    }
    // The first agent claimed two (its slots) and their programs run (their PROGRESS line was
    // reported); the others wait for a device.
    const held = await waitUntil(
      'the first agent to run two jobs',
      async () => {
        const rows = await lab.query<{ id: string }>(
          `select id from job where state = 'running' and progress >= 10 and device_id = $1`,
          [silent.id],
        );
        return rows.length === 2 && rows.map((r) => r.id);
      },
      { timeoutMs: 30_000, intervalMs: 25 },
    );
    // Frozen: no heartbeat, no report, the claimed jobs held (its programs go on by themselves).
    first.child.kill('SIGSTOP');
    startAgent(spare.token);

    const shown = await waitUntil(
      'the silent device to be shown DOWN',
      async () => {
        const res = await call(api, 'GET', `/api/v1/devices/${silent.id}`, admin);
        return res.body.state === 'DOWN' && res.body;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    expect(shown).toMatchObject({ state: 'DOWN' });
    await lab.settle(60_000);

    // The frozen agent wakes up and reports on jobs that are no longer its own: refused.
    first.child.kill('SIGCONT');
    await waitUntil(
      'the woken agent to drop both jobs it held',
      () => Promise.resolve(held.every((id) => first.output.includes(`dropped ${id}`))),
      { timeoutMs: 30_000, intervalMs: 100 },
    );

    const rows = await lab.query<{ id: string; states: string[]; device: string }>(
      `select j.id, j.device_id as device, array_agg(e.state order by e.id) as states
         from job j join job_event e on e.job_id = j.id group by j.id`,
    );
    for (const row of rows) {
      expect(row.device).toBe(spare.id);
      expect(row.states).toEqual(
        held.includes(row.id)
          ? ['queued', 'assigned', 'running', 'queued', 'assigned', 'running', 'succeeded']
          : ['queued', 'assigned', 'running', 'succeeded'],
      );
    }
    const [news] = await lab.query<{ n: number }>(
      `select count(*)::int as n from outbox_event where type = 'device.down' and subject_id = $1`,
      [silent.id],
    );
    expect(news.n).toBe(1);
    // Each program ran on the spare; the held ones also on the frozen device (at least once).
    const counts = ledgerCounts(ledger);
    ids.forEach((id, i) => {
      expect(counts.get(`job-${i}`)).toBe(held.includes(id) ? 2 : 1);
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
