import { ProgressReporter } from './progress-reporter';

describe(ProgressReporter.name, () => {
  let now: number;
  let sent: Array<[number, string | undefined]>;
  let answer: { resolve: () => void }[];

  beforeEach(() => {
    jest.useFakeTimers();
    now = 0;
    sent = [];
    answer = [];
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  /** A sender whose requests stay in flight until the test answers them. */
  function reporter() {
    return new ProgressReporter(
      (percent, message) => {
        sent.push([percent, message]);
        return new Promise<void>((resolve) => answer.push({ resolve }));
      },
      500,
      () => now,
    );
  }

  async function advance(ms: number) {
    now += ms;
    await jest.advanceTimersByTimeAsync(ms);
  }

  async function answerAll() {
    answer.splice(0).forEach((a) => a.resolve());
    await jest.advanceTimersByTimeAsync(0);
  }

  it('sends the first value at once', () => {
    reporter().report(10, 'start');
    expect(sent).toEqual([[10, 'start']]);
  });

  it('sends at most one value per 500 ms, the latest of those that came meanwhile', async () => {
    const progress = reporter();
    progress.report(10);
    await answerAll();
    for (let p = 11; p <= 30; p++) {
      progress.report(p, `step ${p}`);
      await advance(10);
    }
    expect(sent).toEqual([[10, undefined]]);
    await advance(300); // 500 ms since the first
    expect(sent).toEqual([
      [10, undefined],
      [30, 'step 30'],
    ]);
  });

  it('keeps one request in flight: the next waits for the answer', async () => {
    const progress = reporter();
    progress.report(10);
    await advance(2000);
    progress.report(20);
    await advance(2000);
    expect(sent).toEqual([[10, undefined]]);
    await answerAll();
    expect(sent).toEqual([
      [10, undefined],
      [20, undefined],
    ]);
  });

  it('sends 2 per second at most over a long chatty run', async () => {
    const progress = reporter();
    for (let i = 0; i < 1000; i++) {
      progress.report(i / 10);
      await advance(10); // 100 lines a second for 10 s
      await answerAll();
    }
    expect(sent.length).toBeGreaterThanOrEqual(18);
    expect(sent.length).toBeLessThanOrEqual(21);
  });

  it('drops what is pending on close and waits for the request in flight', async () => {
    const progress = reporter();
    progress.report(10);
    progress.report(50);
    let closed = false;
    const closing = progress.close().then(() => (closed = true));
    await jest.advanceTimersByTimeAsync(0);
    expect(closed).toBe(false);
    await answerAll();
    await closing;
    progress.report(90);
    await advance(1000);
    expect(sent).toEqual([[10, undefined]]);
  });

  it('carries on after a failed request', async () => {
    const progress = new ProgressReporter(
      (percent) => {
        sent.push([percent, undefined]);
        return Promise.reject(new Error('network'));
      },
      500,
      () => now,
    );
    progress.report(10);
    progress.report(20);
    await advance(500);
    expect(sent).toEqual([
      [10, undefined],
      [20, undefined],
    ]);
  });
});
