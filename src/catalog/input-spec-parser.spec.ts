import { parseManifest } from './manifest-parser';

type Raw = Record<string, unknown>;

function withInputs(...inputs: Raw[]): Raw {
  return { key: 'svc', title: 'Service', version: '1', inputs, run: { command: ['x'] } };
}

function withInput(input: Raw): Raw {
  return withInputs(input);
}

/** The problems of a manifest (the loader puts the file name in front of each). */
function problems(raw: Raw): string[] {
  return parseManifest(raw, '/srv/svc.yaml').problems;
}

describe('parseManifest inputs', () => {
  it.each<[string, Raw, string]>([
    [
      'a bad input name',
      withInput({ name: '1abc', type: 'int' }),
      'inputs[0].name: "1abc" must be letters, digits and underscores',
    ],
    [
      'a reserved input name',
      withInput({ name: 'service', type: 'int' }),
      'inputs[0].name: "service" is reserved',
    ],
    [
      'payload as input name',
      withInput({ name: 'payload', type: 'file' }),
      'inputs[0].name: "payload" is reserved',
    ],
    [
      'a missing type',
      withInput({ name: 'a' }),
      'inputs[0].type: is required (one of file, volume',
    ],
    [
      'a choice without options',
      withInput({ name: 'c', type: 'choice' }),
      'inputs[0].options: is required for a choice input',
    ],
    [
      'a choice with no options',
      withInput({ name: 'c', type: 'choice', options: [] }),
      'inputs[0].options: must not be empty',
    ],
    [
      'a repeated option',
      withInput({ name: 'c', type: 'choice', options: ['x', 'x'] }),
      'inputs[0].options[1]: "x" is listed twice',
    ],
    [
      'a default not an option',
      withInput({ name: 'c', type: 'choice', options: ['x', 'y'], default: 'z' }),
      'inputs[0].default: must be one of x, y (got "z")',
    ],
    [
      'min above max',
      withInput({ name: 'n', type: 'int', min: 5, max: 1 }),
      'inputs[0].min: 5 is more than max 1',
    ],
    [
      'a fractional int bound',
      withInput({ name: 'n', type: 'int', min: 1.5 }),
      'inputs[0].min: must be a whole number, not 1.5',
    ],
    [
      'a float default out of range',
      withInput({ name: 'f', type: 'float', max: 2.5, default: 3 }),
      'inputs[0].default: must be at most 2.5 (got 3)',
    ],
    [
      'an int default not whole',
      withInput({ name: 'n', type: 'int', default: 1.5 }),
      'inputs[0].default: must be a whole number (got 1.5)',
    ],
    [
      'a default of another type',
      withInput({ name: 'f', type: 'float', default: '1.5' }),
      'inputs[0].default: must be a number, not "1.5"',
    ],
    [
      'a boolean default as text',
      withInput({ name: 'b', type: 'boolean', default: 'yes' }),
      'inputs[0].default: must be a boolean, not "yes"',
    ],
    [
      'a string default too long',
      withInput({ name: 's', type: 'string', maxLength: 3, default: 'abcd' }),
      'inputs[0].default: must be at most 3 characters long (got 4)',
    ],
    [
      'a string default off pattern',
      withInput({ name: 's', type: 'string', pattern: '[a-z]+', default: 'A1' }),
      'inputs[0].default: must match the pattern [a-z]+',
    ],
    [
      'an invalid pattern',
      withInput({ name: 's', type: 'string', pattern: '([a-z' }),
      'inputs[0].pattern: is not a valid regular expression',
    ],
    [
      'a zero maxLength',
      withInput({ name: 's', type: 'string', maxLength: 0 }),
      'inputs[0].maxLength: must be at least 1',
    ],
    [
      'a rule of another type',
      withInput({ name: 's', type: 'string', min: 1 }),
      'inputs[0].min: does not apply to string inputs',
    ],
    [
      'an unknown input field',
      withInput({ name: 's', type: 'string', maxlength: 3 }),
      'inputs[0].maxlength: is not a known field',
    ],
    [
      'a file default',
      withInput({ name: 'f', type: 'file', default: 'x' }),
      'inputs[0].default: a file input cannot have a default',
    ],
    [
      'required with a default',
      withInput({ name: 'f', type: 'float', default: 1, required: true }),
      'inputs[0].required: cannot be true when a default is given',
    ],
    [
      'required not a boolean',
      withInput({ name: 'f', type: 'float', required: 'no' }),
      'inputs[0].required: must be true or false, not "no"',
    ],
    [
      'an extension without a dot',
      withInput({ name: 'f', type: 'file', extensions: ['trc'] }),
      'inputs[0].extensions[0]: "trc" must be an extension starting with a dot',
    ],
    [
      'a volume format not checkable',
      withInput({ name: 'v', type: 'volume', extensions: ['.nii', '.mha'] }),
      'inputs[0].extensions[1]: ".mha" is not a volume format labgate can check',
    ],
    [
      'a volume with no extensions',
      withInput({ name: 'v', type: 'volume', extensions: [] }),
      'inputs[0].extensions: must not be empty',
    ],
    [
      'a bad media type',
      withInput({ name: 'f', type: 'file', mediaTypes: ['text'] }),
      'inputs[0].mediaTypes[0]: "text" is not a media type',
    ],
    [
      'a bad size',
      withInput({ name: 'f', type: 'file', maxBytes: 'big' }),
      'inputs[0].maxBytes: "big" is not a size',
    ],
    [
      'a zero size',
      withInput({ name: 'f', type: 'file', maxBytes: 0 }),
      'inputs[0].maxBytes: must be at least 1, not 0',
    ],
  ])('refuses %s, naming the field', (_what, raw, expected) => {
    expect(problems(raw)).toContainEqual(expect.stringContaining(expected));
    expect(problems(raw).some((p) => p.startsWith(expected))).toBe(true);
  });

  it('refuses two inputs of one name', () => {
    const raw = withInputs(
      { name: 'a', type: 'int' },
      { name: 'b', type: 'int' },
      { name: 'a', type: 'float' },
    );
    expect(problems(raw)).toEqual(['inputs[2].name: "a" is already the name of inputs[0]']);
  });

  it('accepts every input type with its rules', () => {
    const { manifest, problems: found } = parseManifest(
      withInputs(
        { name: 'f', type: 'file', extensions: ['.csv'], mediaTypes: ['Text/CSV'] },
        { name: 'v', type: 'volume', extensions: ['.nrrd'], maxBytes: 1024 },
        { name: 'x', type: 'float', min: -1.5, max: 1.5, default: 0 },
        { name: 'n', type: 'int', min: 1, max: 10, default: 10 },
        { name: 's', type: 'string', maxLength: 5, pattern: '[a-z]*', default: 'ab' },
        { name: 'b', type: 'boolean', default: true },
        { name: 'c', type: 'choice', options: ['p', 'q'], required: false },
      ),
      '/srv/svc.yaml',
    );
    expect(found).toEqual([]);
    expect(manifest!.inputs).toEqual([
      {
        name: 'f',
        type: 'file',
        required: true,
        extensions: ['.csv'],
        mediaTypes: ['text/csv'],
        maxBytes: 2 * 1024 ** 3,
      },
      { name: 'v', type: 'volume', required: true, extensions: ['.nrrd'], maxBytes: 1024 },
      { name: 'x', type: 'float', required: false, min: -1.5, max: 1.5, default: 0 },
      { name: 'n', type: 'int', required: false, min: 1, max: 10, default: 10 },
      {
        name: 's',
        type: 'string',
        required: false,
        maxLength: 5,
        pattern: '[a-z]*',
        default: 'ab',
      },
      { name: 'b', type: 'boolean', required: false, default: true },
      { name: 'c', type: 'choice', required: false, options: ['p', 'q'] },
    ]);
  });
});
