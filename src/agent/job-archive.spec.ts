import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { RawEntry, rawTar } from '../../test/support/tar-fixtures';
import { ArchiveRefusedError, entryRefusal, extractInputs, packOutputs } from './job-archive';

describe(entryRefusal.name, () => {
  it.each([
    ['inputs.json', 'File'],
    ['./inputs.json', 'File'],
    ['inputs/', 'Directory'],
    ['inputs/file/a b.txt', 'OldFile'],
    ['inputs/x..y.txt', 'ContiguousFile'],
  ])('takes %s (%s)', (path, type) => {
    expect(entryRefusal(path, type)).toBeUndefined();
  });

  it.each([
    ['inputs/link', 'SymbolicLink', /symbolic link/],
    ['inputs/hard', 'Link', /hard link/],
    ['inputs/dev', 'CharacterDevice', /character device/],
    ['inputs/blk', 'BlockDevice', /block device/],
    ['inputs/fifo', 'FIFO', /FIFO/],
    ['inputs/what', 'Unsupported', /unsupported type/],
    ['/etc/passwd', 'File', /absolute/],
    ['C:/x.txt', 'File', /absolute/],
    ['../escape.txt', 'File', /"\.\."/],
    ['inputs/../../escape.txt', 'File', /"\.\."/],
    ['inputs\\..\\x', 'File', /backslash/],
    ['inputs/a\u0000b', 'File', /control character/],
  ])('refuses %s (%s)', (path, type, why) => {
    expect(entryRefusal(path, type)).toMatch(why);
  });
});

describe(extractInputs.name, () => {
  let work: string;
  let dest: string;
  let archive: string;

  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'labgate-agent-archive-'));
    dest = join(work, 'job');
    archive = join(work, 'inputs.tar.gz');
    mkdirSync(dest);
  });

  afterEach(() => {
    rmSync(work, { recursive: true, force: true });
  });

  const writeRaw = (entries: RawEntry[]) => writeFileSync(archive, gzipSync(rawTar(entries)));

  it('unpacks inputs.json and the inputs/ files as labgate packs them', async () => {
    const src = join(work, 'src');
    mkdirSync(join(src, 'inputs', 'file'), { recursive: true });
    writeFileSync(join(src, 'inputs.json'), '{"message":"hi"}');
    writeFileSync(join(src, 'inputs', 'file', 'a.txt'), 'some bytes');
    await tar.c({ gzip: true, cwd: src, portable: true, file: archive }, ['inputs.json', 'inputs']);

    await extractInputs(archive, dest);
    expect(readFileSync(join(dest, 'inputs.json'), 'utf8')).toBe('{"message":"hi"}');
    expect(readFileSync(join(dest, 'inputs', 'file', 'a.txt'), 'utf8')).toBe('some bytes');
  });

  it.each<[string, RawEntry, RegExp]>([
    ['a symbolic link', { path: 'inputs/l', type: '2', linkpath: '/etc/passwd' }, /symbolic link/],
    ['a hard link', { path: 'inputs/h', type: '1', linkpath: 'inputs.json' }, /hard link/],
    ['a character device', { path: 'inputs/c', type: '3' }, /character device/],
    ['a FIFO', { path: 'inputs/f', type: '6' }, /FIFO/],
    ['an absolute path', { path: '/tmp/labgate-agent-escape.txt', body: 'x' }, /absolute/],
    ['a ".." path', { path: '../escape.txt', body: 'x' }, /"\.\."/],
  ])('refuses an archive holding %s and writes nothing outside', async (_what, bad, why) => {
    writeRaw([{ path: 'inputs.json', body: '{}' }, bad, { path: 'inputs/after.txt', body: 'x' }]);
    const refused = extractInputs(archive, dest);
    await expect(refused).rejects.toBeInstanceOf(ArchiveRefusedError);
    await expect(refused).rejects.toThrow(why);
    expect(existsSync(join(work, 'escape.txt'))).toBe(false);
    expect(existsSync('/tmp/labgate-agent-escape.txt')).toBe(false);
    expect(existsSync(join(dest, 'inputs', 'after.txt'))).toBe(false);
    for (const name of ['l', 'h', 'c', 'f']) {
      expect(existsSync(join(dest, 'inputs', name))).toBe(false);
    }
  });

  it('does not write through a symbolic link that the archive tries to create first', async () => {
    writeRaw([
      { path: 'inputs', type: '2', linkpath: work },
      { path: 'inputs/owned.txt', body: 'x' },
    ]);
    await expect(extractInputs(archive, dest)).rejects.toThrow(/symbolic link/);
    expect(existsSync(join(work, 'owned.txt'))).toBe(false);
  });

  it.each([
    ['not gzip at all', Buffer.from('hello, not an archive')],
    ['gzip of something else', gzipSync(Buffer.from('x'.repeat(2000)))],
    [
      'a truncated archive',
      gzipSync(rawTar([{ path: 'a.txt', body: 'y'.repeat(4000) }])).subarray(0, 60),
    ],
  ])('refuses %s', async (_what, bytes) => {
    writeFileSync(archive, bytes);
    await expect(extractInputs(archive, dest)).rejects.toBeInstanceOf(ArchiveRefusedError);
  });
});

describe(packOutputs.name, () => {
  let work: string;

  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'labgate-agent-pack-'));
  });

  afterEach(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('packs the files of outputs/ at the archive root and returns the size', async () => {
    const outputs = join(work, 'outputs');
    mkdirSync(join(outputs, 'plots'), { recursive: true });
    writeFileSync(join(outputs, 'message.txt'), 'hello');
    writeFileSync(join(outputs, 'plots', 'a.svg'), '<svg/>');
    symlinkSync('message.txt', join(outputs, 'alias'));
    const file = join(work, 'result.tar.gz');

    const size = await packOutputs(outputs, file);
    expect(size).toBe(readFileSync(file).length);
    const unpacked = join(work, 'unpacked');
    mkdirSync(unpacked);
    await tar.x({ file, cwd: unpacked });
    expect(readFileSync(join(unpacked, 'message.txt'), 'utf8')).toBe('hello');
    expect(readFileSync(join(unpacked, 'plots', 'a.svg'), 'utf8')).toBe('<svg/>');
  });

  it('packs an empty outputs/ as a valid archive', async () => {
    const outputs = join(work, 'outputs');
    mkdirSync(outputs);
    const file = join(work, 'result.tar.gz');
    expect(await packOutputs(outputs, file)).toBeGreaterThan(0);
    const unpacked = join(work, 'unpacked');
    mkdirSync(unpacked);
    await tar.x({ file, cwd: unpacked });
    expect(readdirSync(unpacked)).toEqual([]);
  });
});
