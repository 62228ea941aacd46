import { checkFileName, checkMediaType, validateFieldValues } from './input-validation';
import type { InputSpec, ServiceManifest } from './manifest';

function input(spec: Partial<InputSpec> & Pick<InputSpec, 'name' | 'type'>): InputSpec {
  return { required: true, ...spec };
}

function service(inputs: InputSpec[], overrides: Partial<ServiceManifest> = {}): ServiceManifest {
  return {
    key: 'svc',
    title: 'Service',
    description: '',
    version: '1',
    inputs,
    run: { command: ['true'], env: [], timeoutSeconds: 60, maxOutputBytes: 1024 },
    retry: { attempts: 1, backoffSeconds: 10 },
    retentionDays: 30,
    priority: 0,
    dir: '/srv',
    file: '/srv/svc.yaml',
    ...overrides,
  };
}

/** Validates one value of one input; returns the value or the error message. */
function one(spec: Partial<InputSpec> & Pick<InputSpec, 'type'>, raw: unknown) {
  const { values, errors } = validateFieldValues(
    service([input({ name: 'x', ...spec })]),
    { x: raw },
    [],
  );
  return errors.length ? { error: errors[0].message } : { value: values.x };
}

describe('validateFieldValues', () => {
  it.each<[unknown, number]>([
    ['3.5', 3.5],
    [3.5, 3.5],
    [' 3.5 ', 3.5],
    ['-.5', -0.5],
    ['1e3', 1000],
    ['+2', 2],
    [0, 0],
  ])('accepts %p as the float %p', (raw, value) => {
    expect(one({ type: 'float' }, raw)).toEqual({ value });
  });

  it.each<unknown>(['abc', '1,5', 'Infinity', '0x10', '1.2.3', ' ', true, [1], { a: 1 }, NaN])(
    'refuses %p as a float',
    (raw) => {
      expect(one({ type: 'float' }, raw).error).toMatch(/^x must be a number \(got .*\)$/);
    },
  );

  it.each<[unknown, number]>([
    ['42', 42],
    [42, 42],
    ['-7', -7],
    ['3.0', 3],
    [3.0, 3],
  ])('accepts %p as the int %p', (raw, value) => {
    expect(one({ type: 'int' }, raw)).toEqual({ value });
  });

  it.each<unknown>(['4.2', 4.2, '1e400', 2 ** 60, 'ten', false])('refuses %p as an int', (raw) => {
    expect(one({ type: 'int' }, raw).error).toMatch(/^x must be a whole number \(got .*\)$/);
  });

  it('applies min and max inclusively, with a message naming the bound', () => {
    const spec = { type: 'float' as const, min: 0.5, max: 2.5 };
    expect(one(spec, '0.5')).toEqual({ value: 0.5 });
    expect(one(spec, 2.5)).toEqual({ value: 2.5 });
    expect(one(spec, '0.49')).toEqual({ error: 'x must be at least 0.5 (got 0.49)' });
    expect(one(spec, 3)).toEqual({ error: 'x must be at most 2.5 (got 3)' });
    expect(one({ type: 'int', min: -1, max: 1 }, '-2')).toEqual({
      error: 'x must be at least -1 (got -2)',
    });
  });

  it.each<[unknown, boolean]>([
    ['true', true],
    ['false', false],
    ['TRUE', true],
    [' False ', false],
    [true, true],
    [false, false],
  ])('accepts %p as the boolean %p', (raw, value) => {
    expect(one({ type: 'boolean' }, raw)).toEqual({ value });
  });

  it.each<unknown>(['yes', 'on', '1', 1, 0])('refuses %p as a boolean', (raw) => {
    expect(one({ type: 'boolean' }, raw).error).toMatch(/^x must be true or false \(got .*\)$/);
  });

  it('counts characters, not bytes, against maxLength', () => {
    expect(one({ type: 'string', maxLength: 3 }, '😀😀😀')).toEqual({ value: '😀😀😀' });
    expect(one({ type: 'string', maxLength: 3 }, 'abcd')).toEqual({
      error: 'x must be at most 3 characters long (got 4)',
    });
  });

  it('matches a pattern against the whole value', () => {
    const spec = { type: 'string' as const, pattern: '[a-z]+' };
    expect(one(spec, 'abc')).toEqual({ value: 'abc' });
    expect(one(spec, 'abc1')).toEqual({ error: 'x must match the pattern [a-z]+ (got "abc1")' });
    expect(one(spec, '1abc').error).toContain('must match');
  });

  it('keeps an empty string as a string value, and refuses non-text', () => {
    expect(one({ type: 'string' }, '')).toEqual({ value: '' });
    expect(one({ type: 'string' }, 12)).toEqual({ error: 'x must be text (got 12)' });
  });

  it('accepts only the options of a choice', () => {
    const spec = { type: 'choice' as const, options: ['marker-based', 'height-ratio'] };
    expect(one(spec, 'height-ratio')).toEqual({ value: 'height-ratio' });
    expect(one(spec, 'Height-Ratio')).toEqual({
      error: 'x must be one of marker-based, height-ratio (got "Height-Ratio")',
    });
    expect(one({ type: 'choice', options: ['1', '2'] }, 1).error).toContain('must be one of 1, 2');
  });

  it('fills in defaults and leaves out absent optional inputs', () => {
    const manifest = service([
      input({ name: 'method', type: 'choice', options: ['a', 'b'], default: 'b', required: false }),
      input({ name: 'n', type: 'int', default: 3, required: false }),
      input({ name: 'note', type: 'string', required: false }),
      input({ name: 'flag', type: 'boolean', default: false, required: false }),
    ]);
    expect(validateFieldValues(manifest, {}, [])).toEqual({
      values: { method: 'b', n: 3, flag: false },
      errors: [],
    });
    expect(validateFieldValues(manifest, { n: '5', flag: 'true' }, []).values).toEqual({
      method: 'b',
      n: 5,
      flag: true,
    });
  });

  it('treats an empty form field or a JSON null as absent (except for strings)', () => {
    const manifest = service([
      input({ name: 'n', type: 'float', default: 1, required: false }),
      input({ name: 'm', type: 'float' }),
      input({ name: 's', type: 'string', required: false }),
    ]);
    const { values, errors } = validateFieldValues(manifest, { n: '', m: null, s: '' }, []);
    expect(values).toEqual({ n: 1, s: '' });
    expect(errors).toEqual([{ field: 'm', message: 'm is required' }]);
  });

  it('reports unknown fields and misplaced files by their plain name', () => {
    const manifest = service([
      input({ name: 'a', type: 'float' }),
      input({ name: 'scan', type: 'volume' }),
    ]);
    const { errors } = validateFieldValues(
      manifest,
      { a: '1', colour: 'red', scan: 'x.nii', toString: 'x' },
      ['scan', 'a', 'extra'],
    );
    expect(errors).toEqual([
      { field: 'colour', message: 'colour is not an input of service svc' },
      { field: 'scan', message: 'scan is a volume input: send it as a file, not a text field' },
      { field: 'toString', message: 'toString is not an input of service svc' },
      { field: 'a', message: 'a is a float input, not a file' },
      { field: 'extra', message: 'extra is not an input of service svc' },
    ]);
  });

  it('requires required files and tells which kind', () => {
    const manifest = service([
      input({ name: 'trc', type: 'file', extensions: ['.trc'] }),
      input({ name: 'extra', type: 'file', required: false }),
    ]);
    expect(validateFieldValues(manifest, {}, []).errors).toEqual([
      { field: 'trc', message: 'trc is required: attach a .trc file' },
    ]);
    expect(validateFieldValues(manifest, {}, ['trc'])).toEqual({ values: {}, errors: [] });
  });

  it('reports every problem at once', () => {
    const manifest = service([
      input({ name: 'height', type: 'float', min: 0.5, max: 2.5 }),
      input({ name: 'mass', type: 'float', min: 10, max: 300 }),
      input({ name: 'method', type: 'choice', options: ['a'] }),
      input({ name: 'trc', type: 'file' }),
    ]);
    const { errors } = validateFieldValues(manifest, { height: '3', mass: 'heavy', bogus: 1 }, []);
    expect(errors.map((e) => e.field)).toEqual(['bogus', 'height', 'mass', 'method', 'trc']);
  });
});

describe('checkFileName', () => {
  const trc = input({ name: 'trc', type: 'file', extensions: ['.trc'] });
  const nifti = input({ name: 'scan', type: 'volume', extensions: ['.nii', '.nii.gz'] });

  it.each([
    [trc, 'static.trc'],
    [trc, 'STATIC.TRC'],
    [nifti, 'brain.nii'],
    [nifti, 'brain.NII.GZ'],
    [nifti, 'sub-01.T1w.nii.gz'],
    [input({ name: 'any', type: 'file' }), 'whatever.bin'],
  ])('accepts %#: %s', (spec, name) => {
    expect(checkFileName(spec, name)).toBeUndefined();
  });

  it.each([
    [trc, 'static.txt', 'trc must be a .trc file (got "static.txt")'],
    [trc, 'static.trc.txt', 'must be a .trc file'],
    [nifti, 'brain.gz', 'scan must be a .nii, .nii.gz file (got "brain.gz")'],
    [nifti, 'brain.nii.zip', 'must be a .nii, .nii.gz file'],
    [trc, '', 'trc has no file name'],
    [trc, '../up.trc', 'has an unusable file name'],
    [trc, 'dir/x.trc', 'has an unusable file name'],
    [trc, 'dir\\x.trc', 'has an unusable file name'],
    [trc, '..', 'has an unusable file name'],
    [trc, 'a\u0000b.trc', 'has an unusable file name'],
    [trc, 'line\nbreak.trc', 'has an unusable file name'],
    [trc, `${'é'.repeat(130)}.trc`, 'has an unusable file name'],
  ])('refuses %#: %j', (spec, name, message) => {
    expect(checkFileName(spec, name)).toContain(message);
  });
});

describe('checkMediaType', () => {
  const spec = input({ name: 'f', type: 'file', mediaTypes: ['text/plain'] });

  it('allows a listed type, ignoring case and parameters, and anything when none are listed', () => {
    expect(checkMediaType(spec, 'Text/Plain; charset=utf-8')).toBeUndefined();
    expect(checkMediaType(input({ name: 'g', type: 'file' }), 'image/png')).toBeUndefined();
  });

  it('refuses another or a missing type', () => {
    expect(checkMediaType(spec, 'image/png')).toBe(
      'f must be of type text/plain (got "image/png")',
    );
    expect(checkMediaType(spec, undefined)).toContain('(got "none")');
  });
});
