import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadManifests, ManifestError } from './manifest-loader';

type Raw = Record<string, unknown>;

/** A valid manifest with every kind of input; tests override what they break. */
function manifest(overrides: Raw = {}): Raw {
  return {
    key: 'svc',
    title: 'A service',
    version: '1.0.0',
    inputs: [
      { name: 'message', type: 'string', maxLength: 10 },
      { name: 'scan', type: 'volume' },
      { name: 'factor', type: 'float', min: 0, max: 2, default: 1 },
    ],
    run: { command: ['node', '{serviceDir}/x.js'] },
    ...overrides,
  };
}

describe('loadManifests', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'labgate-manifests-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, content: Raw | string) => {
    const file = join(dir, name);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, typeof content === 'string' ? content : stringify(content));
    return file;
  };

  /** The error message of loading `dir`. */
  const failure = (): string => {
    try {
      loadManifests(dir);
    } catch (err) {
      expect(err).toBeInstanceOf(ManifestError);
      return (err as Error).message;
    }
    throw new Error('loadManifests did not throw');
  };

  it('loads the example services shipped in services/', () => {
    const manifests = loadManifests(join(__dirname, '..', '..', 'services'));
    expect(manifests.map((m) => m.key)).toEqual(['echo', 'float-add', 'model-scaling-demo']);
    const scaling = manifests[2];
    expect(scaling.inputs.map((i) => [i.name, i.type, i.required])).toEqual([
      ['trc', 'file', true],
      ['height', 'float', true],
      ['mass', 'float', true],
      ['method', 'choice', false],
    ]);
    expect(scaling.inputs[0]).toMatchObject({ extensions: ['.trc'], maxBytes: 200 * 1024 ** 2 });
    expect(scaling.dir).toBe(join(__dirname, '..', '..', 'services', 'model-scaling-demo'));
  });

  it('fills in the defaults', () => {
    const file = write('svc.yaml', manifest());
    const [m] = loadManifests(dir);
    expect(m).toMatchObject({
      key: 'svc',
      description: '',
      run: {
        command: ['node', '{serviceDir}/x.js'],
        env: [],
        timeoutSeconds: 3600,
        maxOutputBytes: 10 * 1024 ** 2,
      },
      retry: { attempts: 1, backoffSeconds: 10 },
      retentionDays: 30,
      dir,
      file,
    });
    expect(m.resultSchema).toBeUndefined();
    expect(m.requiredEntitlement).toBeUndefined();
    expect(m.inputs).toEqual([
      { name: 'message', type: 'string', required: true, maxLength: 10 },
      {
        name: 'scan',
        type: 'volume',
        required: true,
        extensions: ['.nii', '.nii.gz', '.nrrd', '.nhdr'],
        maxBytes: 2 * 1024 ** 3,
      },
      { name: 'factor', type: 'float', required: false, min: 0, max: 2, default: 1 },
    ]);
  });

  it('reads sizes with units, lower-cases extensions and keeps explicit settings', () => {
    write(
      'svc.yml',
      manifest({
        inputs: [
          { name: 'f', type: 'file', extensions: ['.TRC'], maxBytes: '5 MiB', required: false },
          { name: 'b', type: 'boolean', required: false },
        ],
        run: { command: ['x'], env: ['HOME'], timeoutSeconds: 5, maxOutputBytes: '1kb' },
        retry: { attempts: 3 },
        requiredEntitlement: 'urn:x',
        retentionDays: 2,
        maxConcurrentJobs: 4,
      }),
    );
    const [m] = loadManifests(dir);
    expect(m.inputs[0]).toEqual({
      name: 'f',
      type: 'file',
      required: false,
      extensions: ['.trc'],
      maxBytes: 5 * 1024 ** 2,
    });
    expect(m.inputs[1]).toEqual({ name: 'b', type: 'boolean', required: false });
    expect(m.run).toEqual({
      command: ['x'],
      env: ['HOME'],
      timeoutSeconds: 5,
      maxOutputBytes: 1024,
    });
    expect(m.retry).toEqual({ attempts: 3, backoffSeconds: 10 });
    expect(m).toMatchObject({
      requiredEntitlement: 'urn:x',
      retentionDays: 2,
      maxConcurrentJobs: 4,
    });
  });

  it('searches subfolders, skips node_modules and dot folders, sorts by key', () => {
    write('b/one.yaml', manifest({ key: 'zeta' }));
    write('a/deeper/two.yml', manifest({ key: 'alpha' }));
    write('node_modules/pkg/bad.yaml', 'not: [a manifest');
    write('.git/x.yaml', 'nor: this');
    write('notes.txt', 'ignored');
    expect(loadManifests(dir).map((m) => m.key)).toEqual(['alpha', 'zeta']);
  });

  it('refuses a SERVICES_DIR that does not exist', () => {
    expect(() => loadManifests(join(dir, 'missing'))).toThrow(
      /SERVICES_DIR .*missing is not a directory/,
    );
  });

  it('names the file and the field of a bad input type', () => {
    const file = write(
      'echo.yaml',
      manifest({
        inputs: [
          { name: 'a', type: 'string' },
          { name: 'b', type: 'floaty' },
        ],
      }),
    );
    expect(failure()).toContain(
      `${file}: inputs[1].type: "floaty" is not one of file, volume, float, int, string, boolean, choice`,
    );
  });

  it.each<[string, Raw, string]>([
    ['a missing key', manifest({ key: undefined }), 'key: is required'],
    ['a bad key', manifest({ key: 'Echo_1' }), 'key: "Echo_1" must be lower-case'],
    ['a key too long', manifest({ key: 'a'.repeat(64) }), 'key: "aaaa'],
    ['a missing title', manifest({ title: undefined }), 'title: is required'],
    [
      'a numeric version',
      manifest({ version: 2 }),
      'version: must be a non-empty string, not 2 (quote it: "2")',
    ],
    ['an unknown field', manifest({ comand: ['x'] }), 'comand: is not a known field'],
    ['inputs not a list', manifest({ inputs: { a: 1 } }), 'inputs: must be a list of inputs'],
    ['an input not a mapping', manifest({ inputs: ['a'] }), 'inputs[0]: must be a mapping'],
    ['no run', manifest({ run: undefined }), 'run: is required'],
    [
      'a shell string command',
      manifest({ run: { command: 'node x.js' } }),
      'run.command: must be a list of arguments (argv), never a shell string',
    ],
    ['an empty command', manifest({ run: { command: [] } }), 'run.command: must not be empty'],
    [
      'a blank argument',
      manifest({ run: { command: ['node', ''] } }),
      'run.command[1]: must be a non-empty string',
    ],
    [
      'a bad env name',
      manifest({ run: { command: ['x'], env: ['A-B'] } }),
      'run.env[0]: "A-B" is not an environment variable name',
    ],
    [
      'a zero timeout',
      manifest({ run: { command: ['x'], timeoutSeconds: 0 } }),
      'run.timeoutSeconds: must be at least 1, not 0',
    ],
    [
      'a bad output cap',
      manifest({ run: { command: ['x'], maxOutputBytes: 'lots' } }),
      'run.maxOutputBytes: "lots" is not a size',
    ],
    [
      'an unknown run field',
      manifest({ run: { command: ['x'], shell: true } }),
      'run.shell: is not a known field',
    ],
    ['zero attempts', manifest({ retry: { attempts: 0 } }), 'retry.attempts: must be at least 1'],
    [
      'fractional retention',
      manifest({ retentionDays: 1.5 }),
      'retentionDays: must be a whole number, not 1.5',
    ],
    [
      'a bad entitlement',
      manifest({ requiredEntitlement: ['x'] }),
      'requiredEntitlement: must be a non-empty string, not a list',
    ],
    [
      'a schema with a typo',
      manifest({ resultSchema: { type: 'object', requird: ['sum'] } }),
      'resultSchema: is not a valid JSON Schema: strict mode: unknown keyword: "requird"',
    ],
    [
      'a schema that is a list',
      manifest({ resultSchema: ['x'] }),
      'resultSchema: must be a JSON Schema object',
    ],
  ])('refuses %s, naming file and field', (_what, raw, expected) => {
    const file = write('bad.yaml', raw);
    expect(failure()).toContain(`${file}: ${expected}`);
  });

  it('lists every problem of every file at once', () => {
    const first = write('a.yaml', manifest({ key: 'BAD', run: { command: 'x' } }));
    const second = write('b.yaml', manifest({ inputs: [{ name: 'x', type: 'choice' }] }));
    write('c.yaml', manifest({ key: 'fine' }));
    const message = failure();
    expect(message).toContain(`${first}: key:`);
    expect(message).toContain(`${first}: run.command:`);
    expect(message).toContain(`${second}: inputs[0].options:`);
    expect(message.split('\n').filter((l) => l.startsWith('  - '))).toHaveLength(3);
  });

  it('refuses a key declared by two files', () => {
    const first = write('a.yaml', manifest({ key: 'same' }));
    const second = write('b.yaml', manifest({ key: 'same', title: 'Other' }));
    expect(failure()).toContain(`${second}: key: "same" is already declared in ${first}`);
  });

  it.each([
    ['invalid YAML', 'key: [unclosed', 'is not valid YAML'],
    ['a repeated YAML key', 'key: a\nkey: b\n', 'is not valid YAML: Map keys must be unique'],
    ['two documents', 'key: a\n---\nkey: b\n', 'is not valid YAML'],
    ['an empty file', '# nothing\n', 'is empty: one service manifest per file'],
    ['a list', '- key: a\n', '(top level): must be a mapping of manifest fields, not a list'],
  ])('refuses %s', (_what, text, expected) => {
    const file = write('bad.yaml', text);
    expect(failure()).toContain(`${file}: ${expected}`);
  });

  it('names files inside the working directory relative to it', () => {
    mkdirSync(join(process.cwd(), 'var'), { recursive: true });
    const local = mkdtempSync(join(process.cwd(), 'var', 'manifests-'));
    try {
      writeFileSync(join(local, 'x.yaml'), stringify(manifest({ key: 'X' })));
      expect(() => loadManifests(local)).toThrow(
        `${local.slice(process.cwd().length + 1)}/x.yaml: key:`,
      );
    } finally {
      rmSync(local, { recursive: true, force: true });
    }
  });
});
