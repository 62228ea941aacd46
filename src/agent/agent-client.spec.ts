import {
  AgentClient,
  AgentHttpError,
  describeError,
  isTransient,
  parseClaim,
  ProtocolError,
  TokenRefusedError,
  withRetries,
} from './agent-client';
import { Backoff, sleep } from './backoff';

const CLAIM = {
  id: '0b6f3c1e-8f5e-4a53-9a86-1f1d0e1c2b3a',
  service: 'echo',
  serviceVersion: '1.0.0',
  attempt: 1,
  inputs: { message: 'hi' },
  inputFiles: [],
  run: {
    command: ['node', '{serviceDir}/echo.js'],
    env: [],
    timeoutSeconds: 60,
    maxOutputBytes: 1024,
  },
  inputsUrl: '/api/v1/agent/jobs/0b6f3c1e-8f5e-4a53-9a86-1f1d0e1c2b3a/inputs',
};

describe(parseClaim.name, () => {
  it('takes a claim as the protocol describes it', () => {
    expect(parseClaim(CLAIM)).toMatchObject({ id: CLAIM.id, service: 'echo', run: CLAIM.run });
  });

  it('defaults a missing env whitelist to none', () => {
    const run: Partial<typeof CLAIM.run> = { ...CLAIM.run };
    delete run.env;
    expect(parseClaim({ ...CLAIM, run }).run.env).toEqual([]);
  });

  it.each([
    ['no id', { ...CLAIM, id: undefined }, /id/, undefined],
    ['no service', { ...CLAIM, service: '' }, /service/, CLAIM.id],
    ['no inputsUrl', { ...CLAIM, inputsUrl: 3 }, /inputsUrl/, CLAIM.id],
    ['no run', { ...CLAIM, run: undefined }, /run\.command/, CLAIM.id],
    [
      'a shell string command',
      { ...CLAIM, run: { ...CLAIM.run, command: 'node x' } },
      /run\.command/,
      CLAIM.id,
    ],
    [
      'an empty command',
      { ...CLAIM, run: { ...CLAIM.run, command: [] } },
      /run\.command/,
      CLAIM.id,
    ],
    [
      'no timeout',
      { ...CLAIM, run: { ...CLAIM.run, timeoutSeconds: 0 } },
      /timeoutSeconds/,
      CLAIM.id,
    ],
    [
      'no output cap',
      { ...CLAIM, run: { ...CLAIM.run, maxOutputBytes: '1' } },
      /maxOutputBytes/,
      CLAIM.id,
    ],
    ['a bad env', { ...CLAIM, run: { ...CLAIM.run, env: [1] } }, /run\.env/, CLAIM.id],
    ['null', null, /id/, undefined],
  ])('refuses a claim with %s, naming the job when it can', (_what, body, field, jobId) => {
    let error: unknown;
    try {
      parseClaim(body);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).message).toMatch(field);
    expect((error as ProtocolError).jobId).toBe(jobId);
  });
});

describe(isTransient.name, () => {
  it.each([
    [
      'a network error',
      Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }),
      true,
    ],
    ['a timeout', new DOMException('timed out', 'TimeoutError'), true],
    ['a 500', new AgentHttpError(500, 'oops', 'POST /x'), true],
    ['a 503', new AgentHttpError(503, 'busy', 'POST /x'), true],
    ['a 429', new AgentHttpError(429, 'slow down', 'POST /x'), true],
    ['a 400', new AgentHttpError(400, 'bad', 'POST /x'), false],
    ['a 404', new AgentHttpError(404, 'gone', 'POST /x'), false],
    ['a 409', new AgentHttpError(409, 'cancelled', 'POST /x'), false],
    ['a refused token', new TokenRefusedError(), false],
    ['a bad answer', new ProtocolError('bad'), false],
    ['our own abort', new DOMException('aborted', 'AbortError'), false],
  ])('%s → %s', (_what, err, transient) => {
    expect(isTransient(err)).toBe(transient);
  });
});

describe(describeError.name, () => {
  it('adds the cause code that fetch hides', () => {
    const err = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    expect(describeError(err)).toBe('fetch failed (ECONNREFUSED)');
  });
});

describe(Backoff.name, () => {
  it('doubles from 1 s up to 30 s, and starts over after a reset', () => {
    const backoff = new Backoff();
    expect(Array.from({ length: 8 }, () => backoff.next())).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
    backoff.reset();
    expect(backoff.next()).toBe(1000);
  });
});

describe(withRetries.name, () => {
  const quick = () => new Backoff(1, 5);

  it('retries transient errors until it succeeds', async () => {
    let calls = 0;
    const retried: unknown[] = [];
    const value = await withRetries(
      () => {
        calls++;
        if (calls < 4) {
          throw calls % 2
            ? new TypeError('fetch failed')
            : new AgentHttpError(502, 'bad gateway', 'x');
        }
        return Promise.resolve('ok');
      },
      new AbortController().signal,
      (err) => retried.push(err),
      quick(),
    );
    expect(value).toBe('ok');
    expect(calls).toBe(4);
    expect(retried).toHaveLength(3);
  });

  it('gives up at once on an answer that a retry cannot change', async () => {
    let calls = 0;
    const gone = new AgentHttpError(409, 'cancelled', 'x');
    await expect(
      withRetries(
        () => {
          calls++;
          return Promise.reject(gone);
        },
        new AbortController().signal,
        undefined,
        quick(),
      ),
    ).rejects.toBe(gone);
    expect(calls).toBe(1);
  });

  it('stops retrying when the signal aborts', async () => {
    const abort = new AbortController();
    const retrying = withRetries(
      () => Promise.reject(new TypeError('fetch failed')),
      abort.signal,
      undefined,
      new Backoff(60_000, 60_000),
    );
    await sleep(10);
    abort.abort();
    await expect(retrying).rejects.toThrow();
  });
});

describe(AgentClient.name, () => {
  it('refuses to send the device token to another origin', async () => {
    const client = new AgentClient('https://labgate.example.org', 'lgd_x');
    await expect(
      client.downloadInputs(
        'https://evil.example.com/inputs',
        '/dev/null',
        new AbortController().signal,
      ),
    ).rejects.toThrow(/refusing to send the device token to https:\/\/evil\.example\.com/);
  });
});
