import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { validateFieldValues, validateMetrics } from '../../src/catalog/input-validation';
import type { ServiceManifest } from '../../src/catalog/manifest';
import { loadManifests } from '../../src/catalog/manifest-loader';

const SERVICES_DIR = join(__dirname, '..', '..', 'services');
const SAMPLE_TRC = join(SERVICES_DIR, 'model-scaling-demo', 'sample.trc');

/**
 * Runs a shipped service the way the local runner does: a fresh work dir with inputs.json,
 * inputs/ and an empty outputs/, the manifest's argv with {serviceDir} replaced, no shell.
 */
function runExample(
  manifest: ServiceManifest,
  fields: Record<string, unknown>,
  files: Record<string, string> = {},
) {
  const { values, errors } = validateFieldValues(manifest, fields, Object.keys(files));
  expect(errors).toEqual([]);
  const work = mkdtempSync(join(tmpdir(), `labgate-${manifest.key}-`));
  mkdirSync(join(work, 'inputs'));
  mkdirSync(join(work, 'outputs'));
  const inputs: Record<string, unknown> = { ...values };
  for (const [name, path] of Object.entries(files)) {
    copyFileSync(path, join(work, 'inputs', basename(path)));
    inputs[name] = `inputs/${basename(path)}`;
  }
  writeFileSync(join(work, 'inputs.json'), JSON.stringify(inputs));
  const [program, ...args] = manifest.run.command.map((a) =>
    a.replaceAll('{serviceDir}', manifest.dir),
  );
  const result = spawnSync(program, args, {
    cwd: work,
    env: { PATH: process.env.PATH },
    encoding: 'utf8',
    timeout: manifest.run.timeoutSeconds * 1000,
  });
  const bytes = (name: string) => readFileSync(join(work, 'outputs', name));
  const progress = result.stdout
    .split('\n')
    .filter((l) => l.startsWith('PROGRESS '))
    .map((l) => Number(l.slice(9)));
  return {
    status: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    progress,
    output: (name: string) => bytes(name).toString('utf8'),
    bytes,
    has: (name: string) => existsSync(join(work, 'outputs', name)),
    dispose: () => rmSync(work, { recursive: true, force: true }),
  };
}

describe('the example services', () => {
  const manifests = new Map(loadManifests(SERVICES_DIR).map((m) => [m.key, m]));
  const service = (key: string) => manifests.get(key)!;
  let tmp: string;
  let runs: ReturnType<typeof runExample>[];
  const run = (...args: Parameters<typeof runExample>) => {
    const r = runExample(...args);
    runs.push(r);
    return r;
  };

  beforeEach(() => {
    runs = [];
    tmp = mkdtempSync(join(tmpdir(), 'labgate-example-files-'));
  });
  afterEach(() => {
    runs.forEach((r) => r.dispose());
    rmSync(tmp, { recursive: true, force: true });
  });

  it('echo returns the message and the file unchanged, reporting progress', () => {
    const file = join(tmp, 'notes.bin');
    writeFileSync(file, Buffer.from([0, 1, 2, 255]));
    const r = run(service('echo'), { message: 'hello, labgate' }, { file });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.output('message.txt')).toBe('hello, labgate');
    expect(r.bytes('notes.bin')).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(r.progress).toEqual([10, 50, 100]);
  });

  it('echo runs without the optional file, and keeps an upload named message.txt apart', () => {
    const alone = run(service('echo'), { message: 'only text' });
    expect(alone.status).toBe(0);
    expect(alone.output('message.txt')).toBe('only text');

    const file = join(tmp, 'message.txt');
    writeFileSync(file, 'the upload');
    const clash = run(service('echo'), { message: 'the message' }, { file });
    expect(clash.status).toBe(0);
    expect(clash.output('message.txt')).toBe('the message');
    expect(clash.output('file-message.txt')).toBe('the upload');
  });

  it('float-add reports the sum as metrics that satisfy its result schema', () => {
    const manifest = service('float-add');
    const r = run(manifest, { a: '1.25', b: 2.5 });
    expect(r.status).toBe(0);
    const metrics = JSON.parse(r.output('metrics.json'));
    expect(metrics).toEqual({ sum: 3.75 });
    expect(validateMetrics(manifest, metrics)).toEqual([]);
    expect(r.progress).toEqual([50, 100]);
  });

  it('model-scaling-demo reads the TRC header of the sample', () => {
    const manifest = service('model-scaling-demo');
    const r = run(manifest, { height: '1.8', mass: '72.5' }, { trc: SAMPLE_TRC });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const scaling = JSON.parse(r.output('scaling.json'));
    expect(scaling).toMatchObject({
      file: 'sample.trc',
      method: 'height-ratio',
      subject: { height: 1.8, mass: 72.5 },
      markers: ['Head', 'C7', 'RASI', 'RHEE'],
      numFrames: 5,
      numMarkers: 4,
      dataRate: 100,
      units: 'mm',
    });
    expect(scaling.scaleFactor).toBeCloseTo(1.8 / 1.75, 10);
    const metrics = JSON.parse(r.output('metrics.json'));
    expect(metrics).toEqual({
      numFrames: 5,
      numMarkers: 4,
      dataRate: 100,
      scaleFactor: scaling.scaleFactor,
    });
    expect(validateMetrics(manifest, metrics)).toEqual([]);
    expect(r.progress).toEqual([10, 60, 100]);
  });

  it('model-scaling-demo passes the chosen method through', () => {
    const r = run(
      service('model-scaling-demo'),
      { height: 1.6, mass: 60, method: 'marker-based' },
      { trc: SAMPLE_TRC },
    );
    expect(r.status).toBe(0);
    expect(JSON.parse(r.output('scaling.json')).method).toBe('marker-based');
  });

  it.each([
    ['not a TRC file', () => 'just some text\n', 'line 1 does not start with PathFileType'],
    [
      'a marker count that disagrees with line 4',
      (sample: string) => sample.replace('\t5\t4\tmm\t', '\t5\t7\tmm\t'),
      'line 4 names 4 markers, NumMarkers says 7',
    ],
    [
      'a header without NumFrames',
      (sample: string) => sample.replace('NumFrames', 'Frames'),
      'line 2/3 has no NumFrames',
    ],
    [
      'an unknown unit',
      (sample: string) => sample.replace('\tmm\t', '\tfeet\t'),
      'Units "feet" is not one of mm, cm, m',
    ],
  ])('model-scaling-demo fails with a clear message on %s', (_what, corrupt, message) => {
    const bad = join(tmp, 'bad.trc');
    writeFileSync(bad, corrupt(readFileSync(SAMPLE_TRC, 'latin1')));
    const r = run(service('model-scaling-demo'), { height: 1.7, mass: 70 }, { trc: bad });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`malformed TRC file bad.trc: ${message}`);
    expect(r.has('metrics.json')).toBe(false);
  });
});
