import type { Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { roleHeaders, ROLE_ENV } from '../support/devices';
import {
  listAll,
  resultsServicesDir,
  submitResult,
  type SubmittedResult,
  userId,
} from '../support/results';
import { startTestApp, TestApp } from '../support/test-app';

type Headers = Record<string, string>;
const ANONYMOUS: Headers = {};

describe('results: visibility on every read path, owner rights, claims and moderation', () => {
  let app: TestApp;
  let http: Server;
  let roles: Awaited<ReturnType<typeof roleHeaders>>;
  let db: Client;
  let ids: { user: string; other: string; admin: string };
  /** Owned by `user`: private, institution, public; and `other`'s private one. */
  let mine: { private: SubmittedResult; institution: SubmittedResult; public: SubmittedResult };
  let theirs: SubmittedResult;

  beforeAll(async () => {
    app = await startTestApp({ ...ROLE_ENV, SERVICES_DIR: resultsServicesDir(), ROLE: 'api' });
    http = app.app.getHttpServer();
    roles = await roleHeaders(app);
    db = new Client({ connectionString: app.config.database.url });
    await db.connect();
    ids = {
      user: await userId(http, roles.user),
      other: await userId(http, roles.other),
      admin: await userId(http, roles.admin),
    };
    mine = {
      private: await submitResult(http, roles.user, { visibility: 'private' }),
      institution: await submitResult(http, roles.user, { visibility: 'institution' }),
      public: await submitResult(http, roles.user, { visibility: 'public' }),
    };
    theirs = await submitResult(http, roles.other, { visibility: 'private' });
  });
  afterAll(async () => {
    await db?.end();
    await app?.close();
  });

  const listed = async (who: Headers) => (await listAll(http, who, {})).items.map((r) => r.id);
  const get = (id: string, who: Headers) => request(http).get(`/api/v1/results/${id}`).set(who);
  const claim = (id: string, who: Headers, reason = 'not a real run') =>
    request(http).post(`/api/v1/results/${id}/claim`).set(who).send({ reason });
  const auditActions = async (targetId: string) =>
    (
      await db.query<{ action: string; actor_id: string | null }>(
        'select action, actor_id from audit_event where target_id = $1 order by at, id',
        [targetId],
      )
    ).rows;

  it('shows each caller exactly the results their visibility allows, in lists and by id', async () => {
    const all = [mine.private, mine.institution, mine.public, theirs].map((r) => r.id);
    expect((await listed(ANONYMOUS)).sort()).toEqual([mine.public.id]);
    expect((await listed(roles.other)).sort()).toEqual(
      [mine.institution.id, mine.public.id, theirs.id].sort(),
    );
    expect((await listed(roles.user)).sort()).toEqual(
      [mine.private.id, mine.institution.id, mine.public.id].sort(),
    );
    expect((await listed(roles.admin)).sort()).toEqual([...all].sort());

    await get(mine.public.id, ANONYMOUS).expect(200);
    for (const id of [mine.private.id, mine.institution.id, theirs.id]) {
      const res = await get(id, ANONYMOUS).expect(404);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    await get(mine.private.id, roles.other).expect(404);
    await get(mine.institution.id, roles.other).expect(200);
    await get(theirs.id, roles.user).expect(404);
    await get(theirs.id, roles.admin).expect(200);
    // Bad credentials are refused, not treated as anonymous.
    await get(mine.public.id, { Authorization: 'Bearer nope' }).expect(401);
  });

  it('lets only the owner and admins change tags and visibility (403 if seen, 404 if not)', async () => {
    const tags = (id: string, who: Headers, body: object) =>
      request(http).put(`/api/v1/results/${id}/tags`).set(who).send(body);
    const patch = (id: string, who: Headers, body: object) =>
      request(http).patch(`/api/v1/results/${id}`).set(who).send(body);

    await tags(mine.public.id, roles.other, { tags: ['x'] }).expect(403);
    await tags(mine.private.id, roles.other, { tags: ['x'] }).expect(404);
    await tags(mine.public.id, ANONYMOUS, { tags: ['x'] }).expect(401);
    await tags(mine.public.id, roles.user, { tags: ['bad tag'] }).expect(400);
    await tags(mine.public.id, roles.user, { tags: ['a', 'a'] }).expect(400);
    const tagged = await tags(mine.public.id, roles.user, { tags: ['gpu', 'v2.1'] }).expect(200);
    expect(tagged.body.tags).toEqual(['gpu', 'v2.1']);
    expect((await listAll(http, ANONYMOUS, { tag: 'gpu' })).items.map((r) => r.id)).toEqual([
      mine.public.id,
    ]);

    await patch(mine.institution.id, roles.other, { visibility: 'public' }).expect(403);
    await patch(theirs.id, roles.user, { visibility: 'public' }).expect(404);
    await patch(mine.institution.id, roles.user, { visibility: 'everyone' }).expect(400);
    await patch(mine.institution.id, roles.user, { visibility: 'public', extra: 1 }).expect(400);
    const made = await patch(mine.institution.id, roles.user, { visibility: 'public' }).expect(200);
    expect(made.body.visibility).toBe('public');
    await get(mine.institution.id, ANONYMOUS).expect(200);
    // Admins may change anyone's: theirs becomes institution-wide, so `user` sees it.
    await patch(theirs.id, roles.admin, { visibility: 'institution' }).expect(200);
    await get(theirs.id, roles.user).expect(200);
    await patch(theirs.id, roles.admin, { visibility: 'private' }).expect(200);
    await get(theirs.id, roles.user).expect(404);
    await patch(mine.institution.id, roles.user, { visibility: 'institution' }).expect(200);

    expect(await auditActions(mine.public.id)).toEqual([
      { action: 'result.submit', actor_id: ids.user },
      { action: 'result.tags', actor_id: ids.user },
    ]);
    expect((await auditActions(theirs.id)).map((a) => [a.action, a.actor_id])).toEqual([
      ['result.submit', ids.other],
      ['result.visibility', ids.admin],
      ['result.visibility', ids.admin],
    ]);
  });

  it('hides a claimed result pending review; a rejection restores it, an approval removes it', async () => {
    const target = mine.public;
    // Nobody claims what they cannot see.
    await claim(mine.private.id, roles.other).expect(404);
    await claim(target.id, ANONYMOUS).expect(401);
    await request(http)
      .post(`/api/v1/results/${target.id}/claim`)
      .set(roles.other)
      .send({})
      .expect(400);

    const first = await claim(target.id, roles.other, 'duplicate of another run').expect(201);
    expect(first.body).toMatchObject({
      resultId: target.id,
      claimantId: ids.other,
      state: 'pending',
      reason: 'duplicate of another run',
    });
    // Hidden from everyone but the owner (marked) and admins, in lists and by id.
    expect(await listed(ANONYMOUS)).not.toContain(target.id);
    expect(await listed(roles.other)).not.toContain(target.id);
    await get(target.id, ANONYMOUS).expect(404);
    await get(target.id, roles.other).expect(404);
    expect((await get(target.id, roles.user).expect(200)).body.status).toBe('under_review');
    const ownList = (await listAll(http, roles.user, {})).items.find((r) => r.id === target.id);
    expect(ownList?.status).toBe('under_review');
    expect((await get(target.id, roles.admin).expect(200)).body.status).toBe('under_review');
    // One pending claim per result.
    const again = await claim(target.id, roles.user, 'me too').expect(409);
    expect(again.body.type).toBe('urn:labgate:problem:claim-pending');

    // The review queue is the admins'.
    await request(http).get('/api/v1/admin/claims').set(roles.user).expect(403);
    const queue = await request(http).get('/api/v1/admin/claims').set(roles.admin).expect(200);
    expect(queue.body.items).toEqual([
      expect.objectContaining({
        id: first.body.id,
        state: 'pending',
        result: expect.objectContaining({
          id: target.id,
          ownerId: ids.user,
          status: 'under_review',
        }),
      }),
    ]);

    const rejected = await request(http)
      .post(`/api/v1/admin/claims/${first.body.id}/reject`)
      .set(roles.admin)
      .send({ note: 'a real run' })
      .expect(200);
    expect(rejected.body).toMatchObject({
      state: 'rejected',
      decidedBy: ids.admin,
      note: 'a real run',
    });
    expect((await get(target.id, ANONYMOUS).expect(200)).body.status).toBe('published');
    expect(await listed(ANONYMOUS)).toContain(target.id);
    await request(http)
      .post(`/api/v1/admin/claims/${first.body.id}/approve`)
      .set(roles.admin)
      .send({})
      .expect(409);

    const second = await claim(target.id, roles.other, 'really not real').expect(201);
    await request(http)
      .post(`/api/v1/admin/claims/${second.body.id}/approve`)
      .set(roles.other)
      .send({})
      .expect(403);
    await request(http)
      .post(`/api/v1/admin/claims/${second.body.id}/approve`)
      .set(roles.admin)
      .send({})
      .expect(200);
    // Removed: gone for everyone, its owner included; admins still see it, marked.
    for (const who of [ANONYMOUS, roles.other, roles.user]) {
      await get(target.id, who).expect(404);
      expect(await listed(who)).not.toContain(target.id);
    }
    expect((await get(target.id, roles.admin).expect(200)).body.status).toBe('removed');
    await claim(target.id, roles.user).expect(404);

    const decided = await request(http)
      .get('/api/v1/admin/claims?state=approved')
      .set(roles.admin)
      .expect(200);
    expect(decided.body.items.map((c: { id: string }) => c.id)).toEqual([second.body.id]);
    expect(
      (await request(http).get('/api/v1/admin/claims').set(roles.admin).expect(200)).body.items,
    ).toEqual([]);
    await request(http).get('/api/v1/admin/claims?state=maybe').set(roles.admin).expect(400);
    await request(http)
      .post('/api/v1/admin/claims/00000000-0000-4000-8000-000000000000/reject')
      .set(roles.admin)
      .send({})
      .expect(404);

    expect((await auditActions(target.id)).map((a) => [a.action, a.actor_id])).toEqual([
      ['result.submit', ids.user],
      ['result.tags', ids.user],
      ['result.claim', ids.other],
      ['result.claim.reject', ids.admin],
      ['result.claim', ids.other],
      ['result.claim.approve', ids.admin],
    ]);
  });

  it('pages the review queue oldest first', async () => {
    const claimed: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await submitResult(http, roles.user, { visibility: 'institution' });
      claimed.push((await claim(r.id, roles.other, `claim ${i}`).expect(201)).body.id);
    }
    const first = await request(http)
      .get('/api/v1/admin/claims?limit=2')
      .set(roles.admin)
      .expect(200);
    const next = await request(http)
      .get(`/api/v1/admin/claims?limit=2&cursor=${first.body.nextCursor}`)
      .set(roles.admin)
      .expect(200);
    expect([...first.body.items, ...next.body.items].map((c: { id: string }) => c.id)).toEqual(
      claimed,
    );
    expect(next.body.nextCursor).toBeUndefined();
  });
});
