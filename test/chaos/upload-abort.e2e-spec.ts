import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checkInvariants } from '../support/chaos/invariants';
import { ApiProcess, Installation } from '../support/chaos/installation';
import { addBulkService, BULK } from '../support/chaos/services';
import { multipartStream, postStream } from '../support/chaos/upload';
import { waitUntil } from '../support/recovery';

const MB = 1024 * 1024;

describe('chaos: the API killed with SIGKILL in the middle of a 500 MB upload', () => {
  let lab: Installation;
  let doomed: ApiProcess;
  let other: ApiProcess;

  beforeAll(async () => {
    lab = await Installation.create({ services: addBulkService });
    [doomed, other] = await Promise.all([lab.startApi(), lab.startApi(), lab.startWorker()]);
  }, 180_000);
  afterAll(async () => {
    await lab?.dispose();
  }, 60_000);

  /** The files in the storage's temp dir (writes in progress), by name, with their sizes. */
  const tempFiles = () => {
    const dir = join(lab.storageDir, '.tmp');
    return new Map(readdirSync(dir).map((name) => [name, statSync(join(dir, name)).size]));
  };

  it('leaves no partial file and no job row, and spares an upload another API takes', async () => {
    const alice = await lab.user('alice');
    // An upload on the other API, held in flight (10 of 30 MB sent) through the whole scenario.
    let release!: () => void;
    const held = multipartStream(
      { service: BULK, note: 'kept' },
      { field: 'data', filename: 'kept.bin', bytes: 30 * MB },
      { at: 10 * MB, until: new Promise<void>((resolve) => (release = resolve)) },
    );
    const keptAnswer = postStream(other, '/api/v1/jobs', alice, held);
    // The 500 MB upload, generated as it is sent.
    const big = multipartStream(
      { service: BULK, note: 'doomed' },
      { field: 'data', filename: 'big.bin', bytes: 500 * MB },
    );
    const bigAnswer = postStream(doomed, '/api/v1/jobs', alice, big);

    // Both are being written: the big one past 100 MB, the held one at its 10 MB.
    const [partial, inFlight] = await waitUntil(
      'a good part of the upload to be on disk, and the other upload to be in flight',
      () => {
        const files = [...tempFiles()];
        const bigOne = files.find(([, size]) => size >= 100 * MB);
        const heldOne = files.find(([, size]) => size >= 9 * MB && size <= 10 * MB);
        return Promise.resolve(bigOne && heldOne && [bigOne[0], heldOne[0]]);
      },
      { timeoutMs: 60_000, intervalMs: 20 },
    );
    doomed.proc.child.kill('SIGKILL');
    expect(await doomed.proc.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const cut = await bigAnswer;
    expect(cut.status).toBe(0); // the connection broke: no answer
    expect(big.sent()).toBeLessThan(500 * MB);
    // What the killed process left: its partial temp file (the debris the restart must clear).
    expect(tempFiles().get(partial)).toBeGreaterThanOrEqual(100 * MB);
    expect(tempFiles().get(partial)).toBeLessThan(500 * MB);

    // The API comes back (a new process on the same storage): the partial file is gone, the
    // other API's upload in flight is not.
    await lab.startApi();
    expect([...tempFiles().keys()]).toEqual([inFlight]);
    release();
    const kept = await keptAnswer;
    expect(kept.status).toBe(201);
    const keptId = (JSON.parse(kept.body) as { id: string }).id;

    // No row for the aborted upload; the other job ran on its whole file.
    await lab.settle(60_000);
    const jobs = await lab.query<{ id: string; state: string; metrics: { bytes: number } }>(
      'select id, state, metrics from job',
    );
    expect(jobs).toEqual([{ id: keptId, state: 'succeeded', metrics: { bytes: 30 * MB } }]);
    const census = await checkInvariants({
      databaseUrl: lab.databaseUrl,
      storageDir: lab.storageDir,
      submitted: [keptId],
    });
    expect(census.problems).toEqual([]);
    expect(census.blobs).toMatchObject({ inputs: 1, result: 1 });
  }, 150_000);
});
