import type { Server } from 'node:http';
import { RESULT_QUERY_TUNING } from '../../src/results/result.repository';
import { roleHeaders, ROLE_ENV } from '../support/devices';
import {
  BENCHMARK,
  listAll,
  listResults,
  resultsServicesDir,
  submitResult,
  type SubmittedResult,
  userId,
} from '../support/results';
import { startTestApp, TestApp } from '../support/test-app';

const NAMES = ['resnet', 'vgg', 'bert', 'alexnet'];
const HOUR = 3600_000;

/** Deterministic metrics with ties, missing values, nested paths and mixed types. */
function metricsOf(i: number): Record<string, unknown> {
  const metrics: Record<string, unknown> = {
    score: i % 10 === 0 ? 2.5 : i % 7,
    passed: i % 2 === 0,
    labels: i % 3 === 0 ? ['gpu', 'fp16'] : ['cpu'],
    model: { depth: i % 11 === 0 ? 'deep' : i % 5, family: i % 2 ? 'cnn' : 'transformer' },
  };
  if (i % 9 !== 0) {
    metrics.name = NAMES[i % 4];
  }
  return metrics;
}

/** The value at a metrics path, undefined when absent (as the API treats JSON null too). */
function at(result: SubmittedResult, path: string): unknown {
  let value: unknown = result.metrics;
  for (const key of path.split('.').slice(1)) {
    value = (value as Record<string, unknown> | undefined)?.[key];
  }
  return value ?? undefined;
}

const RANK: Record<string, number> = { string: 1, number: 2, boolean: 3, object: 5 };
/** PostgreSQL's jsonb order for scalars: string < number < boolean; C collation for text. */
function compareJson(a: unknown, b: unknown): number {
  const ra = Array.isArray(a) ? 4 : RANK[typeof a];
  const rb = Array.isArray(b) ? 4 : RANK[typeof b];
  if (ra !== rb) {
    return ra - rb;
  }
  if (typeof a === 'number' && typeof b === 'number') {
    return a - b;
  }
  const [x, y] = [String(a), String(b)];
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The order the API promises: by the sort key (missing metrics last), then by id. */
function sortedLike(results: SubmittedResult[], sort: string): SubmittedResult[] {
  const descending = sort.startsWith('-');
  const key = descending ? sort.slice(1) : sort;
  const dir = descending ? -1 : 1;
  return [...results].sort((x, y) => {
    let c: number;
    if (key === 'createdAt' || key === 'executedAt') {
      c = Date.parse(x[key]) - Date.parse(y[key]);
    } else {
      const [a, b] = [at(x, key), at(y, key)];
      if (a === undefined || b === undefined) {
        if (a !== b) {
          return a === undefined ? 1 : -1;
        }
        c = 0;
      } else {
        c = compareJson(a, b);
      }
    }
    return c !== 0 ? c * dir : (x.id < y.id ? -1 : x.id > y.id ? 1 : 0) * dir;
  });
}

const ids = (results: SubmittedResult[]) => results.map((r) => r.id);

describe('GET /api/v1/results: filters, sorting and keyset pagination in PostgreSQL', () => {
  let app: TestApp;
  let http: Server;
  let roles: Awaited<ReturnType<typeof roleHeaders>>;
  /** Everything `user` may see: their own results and the others' non-private ones. */
  let visible: SubmittedResult[];
  let hidden: SubmittedResult;
  let base: number;
  let midway: string;

  beforeAll(async () => {
    app = await startTestApp({ ...ROLE_ENV, SERVICES_DIR: resultsServicesDir(), ROLE: 'api' });
    http = app.app.getHttpServer();
    roles = await roleHeaders(app);
    base = Date.now() - 24 * HOUR;
    visible = [];
    for (let i = 0; i < 36; i++) {
      if (i === 18) {
        await new Promise((r) => setTimeout(r, 20));
        midway = new Date().toISOString();
        await new Promise((r) => setTimeout(r, 20));
      }
      visible.push(
        await submitResult(http, i % 6 === 5 ? roles.other : roles.user, {
          metrics: metricsOf(i),
          executedAt: new Date(base - i * HOUR).toISOString(),
          tags: [`batch-${i % 3}`, ...(i % 4 === 0 ? ['baseline'] : [])],
          visibility: i % 2 ? 'public' : 'institution',
        }),
      );
    }
    for (let i = 0; i < 4; i++) {
      visible.push(
        await submitResult(http, roles.user, {
          service: 'float-add',
          metrics: { sum: i * 1.5 },
          executedAt: new Date(base - (40 + i) * HOUR).toISOString(),
        }),
      );
    }
    hidden = await submitResult(http, roles.other, {
      metrics: { score: 3, name: 'resnet' },
      visibility: 'private',
    });
  });
  afterAll(() => app?.close());

  /** Every page with `limit`, against the oracle: same ids in the same order, no repeats. */
  async function expectListing(
    params: Record<string, string | string[]>,
    keep: (r: SubmittedResult) => boolean,
    limit = 7,
  ) {
    const sort = typeof params.sort === 'string' ? params.sort : '-createdAt';
    const expected = ids(sortedLike(visible.filter(keep), sort));
    const { items, pages } = await listAll(http, roles.user, { ...params, limit: String(limit) });
    expect(ids(items)).toEqual(expected);
    expect(pages).toBe(Math.max(1, Math.ceil(expected.length / limit)));
    return items;
  }

  const bench = (r: SubmittedResult) => r.service === BENCHMARK;
  const num = (r: SubmittedResult, path: string) =>
    typeof at(r, path) === 'number' ? (at(r, path) as number) : undefined;

  describe.each<[string, typeof RESULT_QUERY_TUNING]>([
    ['as planned (narrowing by result_metric, metric sorts along it)', { ...RESULT_QUERY_TUNING }],
    ['with row filters only (no narrowing)', { probeLimit: 0, orderedWindow: 5000 }],
    ['with row filters and row sorts only', { probeLimit: 0, orderedWindow: 0 }],
  ])('%s', (_plan, tuning) => {
    const planned = { ...RESULT_QUERY_TUNING };
    beforeAll(() => Object.assign(RESULT_QUERY_TUNING, tuning));
    afterAll(() => Object.assign(RESULT_QUERY_TUNING, planned));
    it('lists what the caller may see, newest first, page by page', async () => {
      const items = await expectListing({}, () => true);
      expect(items).toHaveLength(40);
      expect(ids(items)).not.toContain(hidden.id);
    });

    it.each<[string, string, (r: SubmittedResult) => boolean]>([
      [
        'numbers compare numerically',
        'metrics.score>4',
        (r) => (num(r, 'metrics.score') ?? -1) > 4,
      ],
      ['>= on a fraction', 'metrics.score>=2.5', (r) => (num(r, 'metrics.score') ?? -1) >= 2.5],
      ['< and <=', 'metrics.score<=2', (r) => bench(r) && (num(r, 'metrics.score') ?? 99) <= 2],
      ['= (containment, indexed)', 'metrics.score=3', (r) => at(r, 'metrics.score') === 3],
      ['!=', 'metrics.score!=3', (r) => bench(r) && at(r, 'metrics.score') !== 3],
      ['text equality', 'metrics.name=resnet', (r) => at(r, 'metrics.name') === 'resnet'],
      ['text contains', 'metrics.name~net', (r) => String(at(r, 'metrics.name')).includes('net')],
      [
        'text order',
        'metrics.name<c',
        (r) => typeof at(r, 'metrics.name') === 'string' && (at(r, 'metrics.name') as string) < 'c',
      ],
      [
        'array element',
        'metrics.labels~gpu',
        (r) => ((at(r, 'metrics.labels') as string[]) ?? []).includes('gpu'),
      ],
      ['booleans', 'metrics.passed=true', (r) => at(r, 'metrics.passed') === true],
      ['booleans !=', 'metrics.passed!=true', (r) => at(r, 'metrics.passed') === false],
      ['nested paths', 'metrics.model.family=cnn', (r) => at(r, 'metrics.model.family') === 'cnn'],
      [
        'a number against a path that is sometimes a string: those rows just do not match',
        'metrics.model.depth>=2',
        (r) => (num(r, 'metrics.model.depth') ?? -1) >= 2,
      ],
      ['a number against a string metric matches nothing, no error', 'metrics.name>3', () => false],
      ['a quoted number is text', 'metrics.score="3"', () => false],
      ['a path no result has', 'metrics.nothing.here=1', () => false],
    ])('filters: %s (%s)', async (_what, filter, keep) => {
      await expectListing({ filter }, keep);
    });

    it('combines several metrics filters with the other filters, all of which must hold', async () => {
      await expectListing(
        {
          service: BENCHMARK,
          tag: 'baseline',
          filter: ['metrics.score>=1', 'metrics.score<6', 'metrics.labels~cpu'],
          sort: '-metrics.score',
        },
        (r) =>
          bench(r) &&
          r.tags.includes('baseline') &&
          (num(r, 'metrics.score') ?? -1) >= 1 &&
          (num(r, 'metrics.score') ?? 99) < 6 &&
          (at(r, 'metrics.labels') as string[]).includes('cpu'),
        3,
      );
    });

    it('filters by service, tags (all of them), owner and date ranges', async () => {
      await expectListing({ service: 'float-add' }, (r) => r.service === 'float-add', 3);
      await expectListing({ tag: ['batch-1', 'baseline'] }, (r) =>
        ['batch-1', 'baseline'].every((t) => r.tags.includes(t)),
      );
      const me = await userId(http, roles.user);
      await expectListing({ owner: 'me' }, (r) => r.ownerId === me);
      await expectListing({ owner: me }, (r) => r.ownerId === me);
      const since = new Date(base - 10 * HOUR).toISOString();
      const before = new Date(base - 3 * HOUR).toISOString();
      await expectListing(
        { executedSince: since, executedBefore: before, sort: 'executedAt' },
        (r) =>
          Date.parse(r.executedAt) >= Date.parse(since) &&
          Date.parse(r.executedAt) < Date.parse(before),
        2,
      );
      const later = await expectListing({ createdSince: midway }, (r) => r.createdAt >= midway);
      expect(later.length).toBe(22); // 18 benchmarks and 4 float-add results after midway
      await expectListing({ createdBefore: midway }, (r) => r.createdAt < midway);
    });

    it.each(['createdAt', '-createdAt', 'executedAt', '-executedAt'])(
      'sorts by %s with a stable keyset',
      async (sort) => {
        await expectListing({ sort }, () => true, 6);
      },
    );

    it.each([
      'metrics.score',
      '-metrics.score',
      'metrics.name',
      '-metrics.name',
      '-metrics.model.depth',
    ])('sorts by %s: ties by id, results without the metric last, across pages', async (sort) => {
      const items = await expectListing({ sort }, () => true, 4);
      const path = sort.replace(/^-/, '');
      const missing = items.findIndex((r) => at(r, path) === undefined);
      if (missing >= 0) {
        expect(items.slice(missing).every((r) => at(r, path) === undefined)).toBe(true);
      }
    });

    it('sorts by a metric the filtered results lack or rarely have, missing ones last', async () => {
      await expectListing(
        { service: 'float-add', sort: '-metrics.score' },
        (r) => r.service === 'float-add',
        3,
      );
      await expectListing(
        { service: 'float-add', sort: 'metrics.sum' },
        (r) => r.service === 'float-add',
        3,
      );
      await expectListing(
        { filter: 'metrics.name=bert', sort: '-metrics.model.depth' },
        (r) => at(r, 'metrics.name') === 'bert',
        2,
      );
    });

    it('pages the same with one item per page', async () => {
      await expectListing(
        { sort: '-metrics.score', filter: 'metrics.score>=5' },
        (r) => (num(r, 'metrics.score') ?? -1) >= 5,
        1,
      );
    });
  });

  it('answers a bad filter with a 400 problem that names it', async () => {
    const one = await listResults(http, roles.user, { filter: 'metrics.score>>3' }).expect(400);
    expect(one.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(one.body).toMatchObject({
      status: 400,
      type: 'urn:labgate:problem:validation',
      errors: [{ field: 'filter', message: expect.stringContaining('"metrics.score>>3"') }],
    });
    const second = await listResults(http, roles.user, {
      filter: ['metrics.score>1', 'score<2', 'metrics.a-b=1'],
    }).expect(400);
    expect(second.body.errors).toEqual([
      {
        field: 'filter[1]',
        message: expect.stringMatching(/"score<2" must start with a metrics path/),
      },
      {
        field: 'filter[2]',
        message: expect.stringMatching(/"metrics.a-b=1" has the path segment "a-b"/),
      },
    ]);
    const sort = await listResults(http, roles.user, { sort: 'updatedAt' }).expect(400);
    expect(sort.body.errors[0]).toMatchObject({ field: 'sort' });
  });

  it('refuses cursors it did not give out, and cursors of another sort', async () => {
    const bad = await listResults(http, roles.user, { cursor: 'bm90LWEtY3Vyc29y' }).expect(400);
    expect(bad.body.errors[0]).toMatchObject({ field: 'cursor' });
    const page = await listResults(http, roles.user, { limit: '2', sort: 'metrics.score' }).expect(
      200,
    );
    const other = await listResults(http, roles.user, {
      limit: '2',
      sort: '-createdAt',
      cursor: page.body.nextCursor,
    }).expect(400);
    expect(other.body.detail).toMatch(/belongs to sort=metrics.score/);
    const forged = Buffer.from(
      JSON.stringify(['metrics.score', { a: 1 }, '00000000-0000-4000-8000-000000000000']),
    ).toString('base64url');
    await listResults(http, roles.user, { sort: 'metrics.score', cursor: forged }).expect(400);
  });

  it('refuses unknown parameters, bad limits, and other owners for non-admins', async () => {
    await listResults(http, roles.user, { colour: 'blue' }).expect(400);
    await listResults(http, roles.user, { limit: '0' }).expect(400);
    await listResults(http, roles.user, { limit: '201' }).expect(400);
    await listResults(http, roles.user, { device: 'not-a-uuid' }).expect(400);
    await listResults(http, roles.user, { executedSince: 'yesterday' }).expect(400);
    const otherId = await userId(http, roles.other);
    const res = await listResults(http, roles.user, { owner: otherId }).expect(403);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const admin = await listAll(http, roles.admin, { owner: otherId });
    expect(ids(admin.items).sort()).toEqual(
      [...visible.filter((r) => r.ownerId === otherId), hidden].map((r) => r.id).sort(),
    );
  });
});
