/**
 * Seeds the `result` table of a migrated labgate database with synthetic results, fast
 * (multi-row inserts of arrays through `unnest`, 5000 rows a statement) and reproducibly (a
 * seeded PRNG). Used by bench/results.ts; also runnable on its own:
 *
 *   npx ts-node --transpile-only bench/lib/results-seed.ts postgres://…/db [count] [issuer]
 *
 * The owners are users (issuer, `bench-user-<n>`) created here, so that a bearer token with
 * that issuer and subject signs in as one of them.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';

export interface SeedOptions {
  count: number;
  /** Issuer of the owners (the API's OIDC issuer, so that tokens sign in as them). */
  issuer: string;
  users?: number;
  seed?: number;
}

export interface Seeded {
  /** User ids by subject (`bench-user-0`…). */
  users: Map<string, string>;
  devices: string[];
  /** Model names in the metrics, for filters that match something. */
  names: readonly string[];
  tags: readonly string[];
}

export const SEED_NAMES = [
  'resnet50',
  'resnet101',
  'vgg16',
  'bert-base',
  'bert-large',
  'gpt2',
  'unet',
  'efficientnet',
  'mobilenet',
  'vit-b16',
] as const;
const FAMILIES = ['cnn', 'transformer', 'rnn', 'mlp', 'gnn'];
const LABELS = ['gpu', 'cpu', 'fp16', 'int8'];
export const SEED_TAGS = [
  'baseline',
  'nightly',
  'release',
  ...Array.from({ length: 27 }, (_, i) => `site-${i}`),
];
const BATCH = 5000;
const DAY = 24 * 3600_000;

/** mulberry32: small, fast, good enough to spread synthetic data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function seedResults(db: Client, options: SeedOptions): Promise<Seeded> {
  const random = prng(options.seed ?? 42);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)];
  const users = new Map<string, string>();
  for (let i = 0; i < (options.users ?? 20); i++) {
    const subject = `bench-user-${i}`;
    const { rows } = await db.query<{ id: string }>(
      `insert into app_user (id, issuer, subject, email, name, entitlements, blocked, created_at)
       values ($1, $2, $3, $4, $3, '[]', false, now())
       on conflict (issuer, subject) do update set name = excluded.name
       returning id`,
      [randomUUID(), options.issuer, subject, `${subject}@bench.test`],
    );
    users.set(subject, rows[0].id);
  }
  const owners = [...users.values()];
  const devices = Array.from({ length: 10 }, () => randomUUID());
  const now = Date.now();
  for (let done = 0; done < options.count; done += BATCH) {
    const n = Math.min(BATCH, options.count - done);
    const cols = {
      id: [] as string[],
      service: [] as string[],
      owner: [] as string[],
      device: [] as Array<string | null>,
      metrics: [] as string[],
      tags: [] as string[],
      visibility: [] as string[],
      status: [] as string[],
      created: [] as string[],
      executed: [] as string[],
    };
    for (let i = 0; i < n; i++) {
      const benchmark = random() < 0.8;
      const labels = LABELS.filter(() => random() < 0.4);
      const metrics = benchmark
        ? {
            score: Math.round(random() * 10_000) / 100,
            latencyMs: Math.round(random() * 500_000) / 1000,
            name: pick(SEED_NAMES),
            passed: random() < 0.7,
            labels,
            model: { depth: 1 + Math.floor(random() * 200), family: pick(FAMILIES) },
          }
        : { sum: Math.round((random() - 0.5) * 2e6) / 100 };
      const tags = new Set<string>();
      for (let t = Math.floor(random() * 4); t > 0; t--) {
        tags.add(random() < 0.3 ? pick(SEED_TAGS.slice(0, 3)) : pick(SEED_TAGS));
      }
      const created = now - Math.floor(random() * 365 * DAY);
      const v = random();
      const s = random();
      cols.id.push(randomUUID());
      cols.service.push(benchmark ? 'benchmark' : 'float-add');
      // One owner in 20 is the bench's reader; the rest are spread over the others.
      cols.owner.push(random() < 0.05 ? owners[0] : pick(owners));
      cols.device.push(random() < 0.7 ? pick(devices) : null);
      cols.metrics.push(JSON.stringify(metrics));
      cols.tags.push([...tags].join(','));
      cols.visibility.push(v < 0.5 ? 'public' : v < 0.85 ? 'institution' : 'private');
      cols.status.push(s < 0.98 ? 'published' : s < 0.99 ? 'under_review' : 'removed');
      cols.created.push(new Date(created).toISOString());
      cols.executed.push(new Date(created - Math.floor(random() * 2 * DAY)).toISOString());
    }
    await db.query(
      `insert into result (id, job_id, service, service_version, owner_id, device_id, metrics,
         artifacts, tags, visibility, status, created_at, executed_at, updated_at)
       select id, null, service, '1.0.0', owner, device, metrics::jsonb, '[]'::jsonb,
              case when tags = '' then '{}'::text[] else string_to_array(tags, ',') end,
              visibility, status, created, executed, created
         from unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[])
           as t(id, service, owner, device, metrics, tags, visibility, status, created, executed)`,
      [
        cols.id,
        cols.service,
        cols.owner,
        cols.device,
        cols.metrics,
        cols.tags,
        cols.visibility,
        cols.status,
        cols.created,
        cols.executed,
      ],
    );
  }
  // As autovacuum would have: statistics, and visibility maps for index-only scans.
  await db.query('vacuum analyze result, result_metric');
  return { users, devices, names: SEED_NAMES, tags: SEED_TAGS };
}

if (require.main === module) {
  const [url, count = '100000', issuer = 'http://127.0.0.1/bench'] = process.argv.slice(2);
  if (!url) {
    console.error('usage: results-seed.ts <DATABASE_URL> [count] [issuer]');
    process.exit(2);
  }
  const db = new Client({ connectionString: url });
  const t0 = Date.now();
  db.connect()
    .then(() => seedResults(db, { count: Number(count), issuer }))
    .then(
      () => {
        console.log(`seeded ${count} results in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        return db.end();
      },
      async (err: unknown) => {
        console.error(err);
        await db.end();
        process.exit(1);
      },
    );
}
