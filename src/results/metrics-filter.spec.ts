import { quoteInput } from '../common/caller-input';
import {
  formatSort,
  parseMetricsFilter,
  parseSort,
  QuerySyntaxError,
  type MetricsFilter,
} from './metrics-filter';

describe(parseMetricsFilter.name, () => {
  it.each<[string, MetricsFilter]>([
    ['metrics.sum>3', { path: ['sum'], op: '>', value: { kind: 'number', value: 3, text: '3' } }],
    [
      'metrics.sum>=-2.5e3',
      { path: ['sum'], op: '>=', value: { kind: 'number', value: -2500, text: '-2.5e3' } },
    ],
    [
      'metrics.a.b<=0',
      { path: ['a', 'b'], op: '<=', value: { kind: 'number', value: 0, text: '0' } },
    ],
    ['metrics.x<1', { path: ['x'], op: '<', value: { kind: 'number', value: 1, text: '1' } }],
    [
      'metrics.name=resnet',
      { path: ['name'], op: '=', value: { kind: 'string', value: 'resnet' } },
    ],
    ['metrics.name!=vgg', { path: ['name'], op: '!=', value: { kind: 'string', value: 'vgg' } }],
    ['metrics.name~net', { path: ['name'], op: '~', value: { kind: 'string', value: 'net' } }],
    ['metrics.ok=true', { path: ['ok'], op: '=', value: { kind: 'boolean', value: true } }],
    ['metrics.ok!=false', { path: ['ok'], op: '!=', value: { kind: 'boolean', value: false } }],
    ['metrics.v="2"', { path: ['v'], op: '=', value: { kind: 'string', value: '2' } }],
    ['metrics.v=""', { path: ['v'], op: '=', value: { kind: 'string', value: '' } }],
    ['metrics.v="a=b>c"', { path: ['v'], op: '=', value: { kind: 'string', value: 'a=b>c' } }],
    [
      'metrics.host=node 07',
      { path: ['host'], op: '=', value: { kind: 'string', value: 'node 07' } },
    ],
    ['metrics.sum > 3', { path: ['sum'], op: '>', value: { kind: 'number', value: 3, text: '3' } }],
    ['metrics._a1.B_2=x', { path: ['_a1', 'B_2'], op: '=', value: { kind: 'string', value: 'x' } }],
    // A leading zero is not a JSON number: compared as text, as written.
    ['metrics.zip=0123', { path: ['zip'], op: '=', value: { kind: 'string', value: '0123' } }],
  ])('parses %s', (text, expected) => {
    expect(parseMetricsFilter(text)).toEqual(expected);
  });

  it.each<[string, RegExp]>([
    ['metrics.sum', /has no operator/],
    ['sum>3', /must start with a metrics path/],
    ['metrics>3', /must start with a metrics path/],
    ['metrics.>3', /path segment ""/],
    ['metrics.a..b=1', /path segment ""/],
    ['metrics.1a=1', /path segment "1a"/],
    ['metrics.a-b=1', /path segment "a-b"/],
    ["metrics.a'b=1", /path segment "a'b"/],
    ['metrics.a[0]=1', /has no operator|path segment/],
    ['metrics.sum>', /has no value/],
    ['metrics.sum>>3', /value starting with ">"/],
    ['metrics.sum=<3', /value starting with "<"/],
    ['metrics.ok>true', /booleans take = or != only/],
    ['metrics.v="open', /not a JSON string/],
    ['metrics.v="a"b', /not a JSON string/],
    [`metrics.${Array.from({ length: 11 }, () => 'a').join('.')}=1`, /deeper than 10/],
    [`metrics.v=${'x'.repeat(201)}`, /longer than 200/],
    ['metrics.n=1e999', /too large/],
  ])('refuses %s, naming it and why', (text, why) => {
    let error: unknown;
    try {
      parseMetricsFilter(text);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(QuerySyntaxError);
    expect((error as QuerySyntaxError).field).toBe('filter');
    expect((error as Error).message).toContain(quoteInput(text));
    expect((error as Error).message).toMatch(why);
  });

  it('names a long filter by its start only', () => {
    const text = `metrics.v=${'x'.repeat(200)}>`;
    expect(() => parseMetricsFilter(text)).toThrow(
      `filter "${text.slice(0, 100)}"… has a value longer than 200 characters`,
    );
  });
});

describe(parseSort.name, () => {
  it.each([
    ['createdAt', { key: 'createdAt', descending: false }],
    ['-createdAt', { key: 'createdAt', descending: true }],
    ['executedAt', { key: 'executedAt', descending: false }],
    ['-metrics.sum', { key: 'metrics', path: ['sum'], descending: true }],
    ['metrics.a.b', { key: 'metrics', path: ['a', 'b'], descending: false }],
  ])('parses %s and formats it back', (text, expected) => {
    const sort = parseSort(text);
    expect(sort).toEqual(expected);
    expect(formatSort(sort)).toBe(text);
  });

  it.each([
    ['updatedAt', /must be createdAt, executedAt or a metrics path/],
    ['--createdAt', /must be createdAt/],
    ['metrics', /must start with a metrics path/],
    ['metrics.a;drop', /path segment "a;drop"/],
    ['-metrics.', /path segment ""/],
  ])('refuses %s', (text, why) => {
    expect(() => parseSort(text)).toThrow(why);
    expect(() => parseSort(text)).toThrow(QuerySyntaxError);
  });
});
