import { validateMetrics } from './input-validation';
import type { ServiceManifest } from './manifest';
import { compileResultSchema } from './result-schema';

function service(resultSchema?: Record<string, unknown>): ServiceManifest {
  return {
    key: 'svc',
    title: 'Service',
    description: '',
    version: '1',
    inputs: [],
    resultSchema,
    run: { command: ['true'], env: [], timeoutSeconds: 60, maxOutputBytes: 1024 },
    retry: { attempts: 1, backoffSeconds: 10 },
    retentionDays: 30,
    priority: 0,
    dir: '/srv',
    file: '/srv/svc.yaml',
  };
}

const sumSchema = {
  type: 'object',
  properties: { sum: { type: 'number' } },
  required: ['sum'],
  additionalProperties: false,
};

describe('validateMetrics', () => {
  it('accepts metrics that satisfy the schema', () => {
    expect(validateMetrics(service(sumSchema), { sum: 3.5 })).toEqual([]);
  });

  it('accepts anything when the service declares no schema', () => {
    expect(validateMetrics(service(), { whatever: [1, 2] })).toEqual([]);
  });

  it('names each problem by its path under metrics', () => {
    expect(validateMetrics(service(sumSchema), {})).toEqual([
      { field: 'metrics.sum', message: 'metrics.sum is required' },
    ]);
    expect(validateMetrics(service(sumSchema), { sum: 'three', extra: 1 })).toEqual(
      expect.arrayContaining([
        { field: 'metrics.sum', message: 'metrics.sum must be number' },
        { field: 'metrics.extra', message: 'metrics.extra is not allowed by the result schema' },
      ]),
    );
    expect(validateMetrics(service(sumSchema), [1])).toEqual([
      { field: 'metrics', message: 'metrics must be object' },
    ]);
  });

  it('writes array items with brackets and unescapes JSON pointers', () => {
    const schema = {
      type: 'object',
      properties: {
        'a/b': {
          type: 'array',
          items: { type: 'object', properties: { v: { type: 'integer' } } },
        },
      },
    };
    expect(validateMetrics(service(schema), { 'a/b': [{ v: 1 }, { v: 1.5 }] })).toEqual([
      { field: 'metrics.a/b[1].v', message: 'metrics.a/b[1].v must be integer' },
    ]);
  });

  it('checks formats', () => {
    const schema = { type: 'object', properties: { at: { type: 'string', format: 'date-time' } } };
    expect(validateMetrics(service(schema), { at: '2026-01-01T00:00:00Z' })).toEqual([]);
    expect(validateMetrics(service(schema), { at: 'yesterday' })[0].field).toBe('metrics.at');
  });
});

describe('compileResultSchema', () => {
  it('is strict about unknown keywords', () => {
    expect(() => compileResultSchema({ type: 'object', requird: ['x'] })).toThrow(
      /unknown keyword: "requird"/,
    );
  });

  it('compiles 2020-12 schemas when they say so', () => {
    const validate = compileResultSchema({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'array',
      prefixItems: [{ type: 'number' }],
      minItems: 1,
      items: false,
    });
    expect(validate([1])).toBe(true);
    expect(validate(['x'])).toBe(false);
  });

  it('lets two services use the same $id', () => {
    const schema = { $id: 'urn:labgate:metrics', type: 'object' };
    expect(() => {
      compileResultSchema({ ...schema });
      compileResultSchema({ ...schema });
    }).not.toThrow();
  });
});
