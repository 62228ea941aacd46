import { Registry, register as globalRegistry } from 'prom-client';
import { PrecomputedHistogram } from './precomputed-histogram';

function histogram(registry: Registry) {
  return new PrecomputedHistogram({
    name: 'test_run_seconds',
    help: 'Run time.',
    labelNames: ['service'],
    buckets: [1, 10],
    registers: [registry],
  });
}

describe(PrecomputedHistogram.name, () => {
  it('writes the counts it was given as buckets, +Inf, sum and count', async () => {
    const registry = new Registry();
    histogram(registry).set([
      { labels: { service: 'echo' }, buckets: [2, 5], sum: 31.5, count: 6 },
    ]);
    const text = await registry.metrics();
    expect(text).toContain('# TYPE test_run_seconds histogram');
    expect(text.split('\n').filter((l) => l.startsWith('test_run_seconds'))).toEqual([
      'test_run_seconds_bucket{le="1",service="echo"} 2',
      'test_run_seconds_bucket{le="10",service="echo"} 5',
      'test_run_seconds_bucket{le="+Inf",service="echo"} 6',
      'test_run_seconds_sum{service="echo"} 31.5',
      'test_run_seconds_count{service="echo"} 6',
    ]);
  });

  it('replaces every series on each set, and reset drops them', async () => {
    const registry = new Registry();
    const h = histogram(registry);
    h.set([{ labels: { service: 'a' }, buckets: [1, 1], sum: 1, count: 1 }]);
    h.set([{ labels: { service: 'b' }, buckets: [0, 1], sum: 2, count: 1 }]);
    const text = await registry.metrics();
    expect(text).not.toContain('service="a"');
    expect(text).toContain('test_run_seconds_count{service="b"} 1');
    h.reset();
    expect(await registry.metrics()).not.toContain('service="b"');
  });

  it('refuses bucket counts that do not match its bounds', () => {
    const h = histogram(new Registry());
    expect(() => h.set([{ labels: { service: 'a' }, buckets: [1], sum: 1, count: 1 }])).toThrow(
      /1 bucket counts for 2 bounds/,
    );
  });

  it('stays out of the global registry', () => {
    histogram(new Registry());
    expect(globalRegistry.getSingleMetric('test_run_seconds')).toBeUndefined();
  });
});
