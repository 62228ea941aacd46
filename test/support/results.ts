import { mkdirSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import request from 'supertest';
import { testServicesDir } from './services.fixture';

export type Headers = Record<string, string>;

/** A service whose result schema asks for a score and allows more (for search tests). */
export const BENCHMARK = 'benchmark';
/** A service that needs an entitlement nobody in the tests has. */
export const RESTRICTED = 'restricted-bench';
/** A service whose run writes metrics and nested output files (for the feed and artifacts). */
export const PLOTTER = 'plotter';

/** The bytes `plotter` writes to outputs/plots/loss.png: 5000 bytes, 0..255 repeating. */
export const PLOT_BYTES = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 256));

const SCHEMA = `resultSchema:
  type: object
  properties:
    score: { type: number }
    name: { type: string }
    passed: { type: boolean }
    labels: { type: array, items: { type: string } }
    model: { type: object }
  required: [score]
`;

/** The shipped services, the tests' own, and the three above. */
export function resultsServicesDir(): string {
  const dir = testServicesDir();
  writeFileSync(
    join(dir, `${BENCHMARK}.yaml`),
    `key: ${BENCHMARK}
title: Benchmark
version: 2.0.0
inputs: []
${SCHEMA}run:
  command: [node, -e, "0"]
retentionDays: 1
`,
  );
  writeFileSync(
    join(dir, `${RESTRICTED}.yaml`),
    `key: ${RESTRICTED}
title: Restricted benchmark
version: 1.0.0
inputs: []
requiredEntitlement: urn:mace:labgate.test:nobody
run:
  command: [node, -e, "0"]
retentionDays: 1
`,
  );
  mkdirSync(join(dir, PLOTTER));
  writeFileSync(
    join(dir, PLOTTER, 'plot.js'),
    `'use strict';
const fs = require('node:fs');
fs.mkdirSync('outputs/plots', { recursive: true });
fs.writeFileSync('outputs/plots/loss.png', Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 256)));
fs.writeFileSync('outputs/plots/a b.txt', 'spaced');
fs.writeFileSync('outputs/report.csv', 'epoch,loss\\n1,0.5\\n');
fs.writeFileSync(
  'outputs/metrics.json',
  JSON.stringify({ score: 0.93, name: 'plotter', labels: ['gpu'], model: { depth: 4 } }),
);
`,
  );
  writeFileSync(
    join(dir, PLOTTER, `${PLOTTER}.yaml`),
    `key: ${PLOTTER}
title: Plotter
version: 1.2.0
inputs: []
${SCHEMA}run:
  command: [node, '{serviceDir}/plot.js']
  timeoutSeconds: 30
retentionDays: 1
`,
  );
  return dir;
}

export interface SubmittedResult {
  id: string;
  service: string;
  ownerId: string;
  metrics: Record<string, unknown>;
  tags: string[];
  visibility: string;
  status: string;
  createdAt: string;
  executedAt: string;
  [key: string]: unknown;
}

/** POST /api/v1/results (a benchmark result with a score unless overridden); expects 201. */
export async function submitResult(
  http: Server,
  who: Headers,
  body: Record<string, unknown> = {},
): Promise<SubmittedResult> {
  const res = await request(http)
    .post('/api/v1/results')
    .set(who)
    .send({
      service: BENCHMARK,
      metrics: { score: 1 },
      executedAt: new Date(Date.now() - 60_000).toISOString(),
      ...body,
    });
  if (res.status !== 201) {
    throw new Error(`POST /api/v1/results: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body as SubmittedResult;
}

export type QueryValue = string | number | string[] | undefined;

/** A query string with repeated keys for lists (`filter=a&filter=b`), encoded. */
export function queryString(params: Record<string, QueryValue>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
      search.append(key, String(v));
    }
  }
  return search.toString();
}

/** GET /api/v1/results?… as `who` (anonymous without headers). */
export function listResults(http: Server, who: Headers, params: Record<string, QueryValue> = {}) {
  return request(http)
    .get(`/api/v1/results?${queryString(params)}`)
    .set(who);
}

/** Every page of a listing, following nextCursor; the ids in order and the page count. */
export async function listAll(
  http: Server,
  who: Headers,
  params: Record<string, QueryValue>,
): Promise<{ items: SubmittedResult[]; pages: number }> {
  const items: SubmittedResult[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const res = await listResults(http, who, { ...params, cursor });
    if (res.status !== 200) {
      throw new Error(`GET /api/v1/results: ${res.status} ${JSON.stringify(res.body)}`);
    }
    items.push(...(res.body.items as SubmittedResult[]));
    cursor = res.body.nextCursor as string | undefined;
    pages++;
    if (pages > 1000) {
      throw new Error('more than 1000 pages: the cursor does not advance');
    }
  } while (cursor);
  return { items, pages };
}

/** The signed-in user's id (GET /api/v1/me). */
export async function userId(http: Server, who: Headers): Promise<string> {
  const res = await request(http).get('/api/v1/me').set(who).expect(200);
  return res.body.id as string;
}
