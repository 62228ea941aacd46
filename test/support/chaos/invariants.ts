import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { Client } from 'pg';

/** States a job ends in; `expired` comes later, from retention or a delete. */
const ENDINGS = ['succeeded', 'failed', 'cancelled'];
const FINAL = [...ENDINGS, 'expired'];

interface JobRow {
  id: string;
  state: string;
  input_files: Array<{ key: string; size: number; sha256: string }>;
  result_size: string | null;
  result_sha256: string | null;
}

interface EventRow {
  job_id: string;
  state: string;
  previous_state: string | null;
}

interface ResultRow {
  id: string;
  job_id: string | null;
  archive_key: string | null;
  archive_size: string | null;
}

/** What PostgreSQL and the storage dir hold once the dust settled; see `checkInvariants`. */
export interface Census {
  jobs: number;
  byState: Record<string, number>;
  /** Blobs in the storage dir: `inputs`, `result` (job archives), `log`, `archive` (results'). */
  blobs: Record<string, number>;
  /** Rows that reference a blob: input files, job result archives, result archives. */
  references: Record<string, number>;
  /** Problems found; empty when every invariant holds. */
  problems: string[];
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/** Every regular file under `dir`, as `/`-separated paths relative to `root`. */
async function walk(root: string, dir = root, into: string[] = []): Promise<string[]> {
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      await walk(root, path, into);
    } else {
      into.push(relative(root, path).split(sep).join('/'));
    }
  }
  return into;
}

/**
 * The invariants every chaos scenario must leave behind, checked against PostgreSQL and the
 * storage dir directly (not through the API, which could hide a problem):
 *  - every submitted job exists and has ended: in a final state, with exactly one ending event
 *    (succeeded, failed or cancelled) in its `job_event` outbox, the last event being its state,
 *    and each event following the one before (`previous_state`), so no move was lost or doubled;
 *  - no stored file is orphaned: each blob is referenced by a row (a job's input file, a job's
 *    result archive with its size and sha256, a job's log, a result's archive), and nothing is
 *    left in the storage's temp dir (`.tmp`, partial writes);
 *  - no stored file is missing: each input file, result archive and result archive a row
 *    references exists with the recorded size;
 *  - one result per succeeded job (none for the others);
 *  - so the counts of blobs and of the rows that reference them match.
 * Returns the census; `problems` lists every broken invariant (empty when all hold).
 */
export async function checkInvariants(options: {
  databaseUrl: string;
  storageDir: string;
  /** Ids of the jobs the test submitted: each must exist (and nothing else may be missing). */
  submitted?: string[];
}): Promise<Census> {
  const { storageDir } = options;
  const problems: string[] = [];
  const client = new Client({ connectionString: options.databaseUrl });
  await client.connect();
  let jobs: JobRow[];
  let events: EventRow[];
  let results: ResultRow[];
  try {
    jobs = (
      await client.query<JobRow>(
        'select id, state, input_files, result_size, result_sha256 from job order by created_at',
      )
    ).rows;
    events = (
      await client.query<EventRow>(
        'select job_id, state, previous_state from job_event order by id',
      )
    ).rows;
    results = (
      await client.query<ResultRow>('select id, job_id, archive_key, archive_size from result')
    ).rows;
  } finally {
    await client.end();
  }

  const byId = new Map(jobs.map((j) => [j.id, j]));
  for (const id of options.submitted ?? []) {
    if (!byId.has(id)) {
      problems.push(`job ${id} was submitted (201) but has no row`);
    }
  }
  const eventsOf = new Map<string, EventRow[]>();
  for (const e of events) {
    eventsOf.set(e.job_id, [...(eventsOf.get(e.job_id) ?? []), e]);
  }
  const byState: Record<string, number> = {};
  for (const job of jobs) {
    byState[job.state] = (byState[job.state] ?? 0) + 1;
    if (!FINAL.includes(job.state)) {
      problems.push(`job ${job.id} did not end: it is ${job.state}`);
    }
    const own = eventsOf.get(job.id) ?? [];
    const endings = own.filter((e) => ENDINGS.includes(e.state));
    if (FINAL.includes(job.state) && endings.length !== 1) {
      problems.push(
        `job ${job.id} ended ${endings.length} times: ${own.map((e) => e.state).join(' → ')}`,
      );
    }
    if (own.length === 0 || own[own.length - 1].state !== job.state) {
      problems.push(`job ${job.id} is ${job.state} but its last event is ${own.at(-1)?.state}`);
    }
    own.forEach((e, i) => {
      const before = i === 0 ? null : own[i - 1].state;
      if (e.previous_state !== before) {
        problems.push(
          `job ${job.id}: event ${i} (${e.state}) follows ${before} but says ${e.previous_state}`,
        );
      }
    });
  }

  // One result per succeeded job (the results feed reads each job's event once, in effect).
  const resultsOf = new Map<string, number>();
  for (const r of results) {
    if (r.job_id) {
      resultsOf.set(r.job_id, (resultsOf.get(r.job_id) ?? 0) + 1);
    }
  }
  for (const job of jobs) {
    const n = resultsOf.get(job.id) ?? 0;
    const expected = job.state === 'succeeded' ? 1 : 0;
    if (n !== expected && !(job.state === 'expired' && n <= 1)) {
      problems.push(`job ${job.id} (${job.state}) has ${n} result(s)`);
    }
  }

  // Blobs against the rows that reference them, both ways.
  const temp = await walk(join(storageDir, '.tmp'));
  for (const name of temp) {
    problems.push(`partial write left in the storage temp dir: .tmp/${name}`);
  }
  const keys = (await walk(storageDir)).filter((k) => !k.startsWith('.tmp/'));
  const blobs: Record<string, number> = { inputs: 0, result: 0, log: 0, archive: 0 };
  const inputKeys = new Map<string, { job: JobRow; size: number }>();
  for (const job of jobs) {
    for (const file of job.input_files ?? []) {
      inputKeys.set(file.key, { job, size: Number(file.size) });
    }
  }
  const archives = new Map(results.filter((r) => r.archive_key).map((r) => [r.archive_key!, r]));
  for (const key of keys) {
    const size = (await stat(join(storageDir, key))).size;
    const jobKey = /^jobs\/([0-9a-f-]{36})\/(.+)$/.exec(key);
    if (jobKey) {
      const job = byId.get(jobKey[1]);
      const rest = jobKey[2];
      if (!job) {
        problems.push(`orphaned blob ${key}: there is no job ${jobKey[1]}`);
      } else if (rest.startsWith('inputs/')) {
        blobs.inputs++;
        const input = inputKeys.get(key);
        if (!input) {
          problems.push(`orphaned blob ${key}: not an input file of job ${job.id}`);
        } else if (input.size !== size) {
          problems.push(`input ${key} holds ${size} bytes; its job says ${input.size}`);
        }
      } else if (rest === 'result.tar.gz') {
        blobs.result++;
        if (!job.result_sha256) {
          problems.push(`orphaned blob ${key}: job ${job.id} (${job.state}) records no result`);
        } else if (
          Number(job.result_size) !== size ||
          (await sha256(join(storageDir, key))) !== job.result_sha256
        ) {
          problems.push(`result ${key} differs from the size and sha256 job ${job.id} records`);
        }
      } else if (rest === 'log.txt') {
        blobs.log++;
      } else {
        problems.push(`unexpected blob ${key}`);
      }
      continue;
    }
    if (/^results\/[0-9a-f-]{36}\/outputs\.tar\.gz$/.test(key)) {
      blobs.archive++;
      const result = archives.get(key);
      if (!result) {
        problems.push(`orphaned blob ${key}: no result references it`);
      } else if (Number(result.archive_size) !== size) {
        problems.push(`archive ${key} holds ${size} bytes; result ${result.id} says otherwise`);
      }
      continue;
    }
    problems.push(`unexpected blob ${key}`);
  }
  const present = new Set(keys);
  for (const [key, { job }] of inputKeys) {
    if (job.state !== 'expired' && !present.has(key)) {
      problems.push(`missing blob ${key}: an input file of job ${job.id}`);
    }
  }
  const withResult = jobs.filter((j) => j.result_sha256 && j.state !== 'expired');
  for (const job of withResult) {
    if (!present.has(`jobs/${job.id}/result.tar.gz`)) {
      problems.push(`missing blob jobs/${job.id}/result.tar.gz: job ${job.id} records a result`);
    }
  }
  for (const key of archives.keys()) {
    if (!present.has(key)) {
      problems.push(`missing blob ${key}: a result references it`);
    }
  }
  const references = {
    inputs: [...inputKeys.values()].filter(({ job }) => job.state !== 'expired').length,
    result: withResult.length,
    archive: archives.size,
  };
  for (const kind of ['inputs', 'result', 'archive'] as const) {
    if (blobs[kind] !== references[kind]) {
      problems.push(`${blobs[kind]} ${kind} blob(s) in storage, ${references[kind]} in PostgreSQL`);
    }
  }
  return { jobs: jobs.length, byState, blobs, references, problems };
}
