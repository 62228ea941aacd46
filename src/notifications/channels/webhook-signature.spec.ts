import { createHmac } from 'node:crypto';
import { signPayload, verifySignature } from './webhook-signature';

const SECRET = 'whsec_test';
const BODY = '{"event":"job.succeeded","id":"d1"}';
const T = 1_700_000_000;

describe(signPayload.name, () => {
  it('signs "<t>.<body>" with HMAC-SHA256 and gives t and v1', () => {
    const expected = createHmac('sha256', SECRET).update(`${T}.${BODY}`).digest('hex');
    expect(signPayload(SECRET, BODY, T)).toBe(`t=${T},v1=${expected}`);
  });

  it('uses the current time by default', () => {
    const t = Number(/^t=(\d+),/.exec(signPayload(SECRET, BODY))?.[1]);
    expect(Math.abs(t - Date.now() / 1000)).toBeLessThan(5);
  });
});

describe(verifySignature.name, () => {
  const header = signPayload(SECRET, BODY, T);

  it('accepts the signature of the body within the tolerance', () => {
    expect(verifySignature(SECRET, header, BODY, 300, T + 299)).toBe(true);
    expect(verifySignature(SECRET, header, Buffer.from(BODY), 300, T - 299)).toBe(true);
    expect(verifySignature(SECRET, signPayload(SECRET, BODY), BODY)).toBe(true);
  });

  it('rejects a tampered body, another secret and an old or future timestamp', () => {
    expect(verifySignature(SECRET, header, BODY.replace('d1', 'd2'), 300, T)).toBe(false);
    expect(verifySignature('other', header, BODY, 300, T)).toBe(false);
    expect(verifySignature(SECRET, header, BODY, 300, T + 301)).toBe(false);
    expect(verifySignature(SECRET, header, BODY, 300, T - 301)).toBe(false);
  });

  it('rejects a timestamp changed without re-signing', () => {
    const moved = header.replace(`t=${T}`, `t=${T + 10}`);
    expect(verifySignature(SECRET, moved, BODY, 300, T)).toBe(false);
    expect(verifySignature(SECRET, header.replace('t=', 't=0'), BODY, 300, T)).toBe(false);
  });

  it.each([
    undefined,
    '',
    'garbage',
    `t=${T}`,
    `v1=${'0'.repeat(64)}`,
    `t=${T},v1=zz`,
    `t=x,v1=${'0'.repeat(64)}`,
  ])('rejects the malformed header %p', (value) => {
    expect(verifySignature(SECRET, value, BODY, 300, T)).toBe(false);
  });

  it('accepts a header with several v1 values when one matches (secret rotation)', () => {
    const other = signPayload('old-secret', BODY, T).split(',')[1];
    expect(verifySignature(SECRET, `${other},${header}`, BODY, 300, T)).toBe(true);
  });
});
