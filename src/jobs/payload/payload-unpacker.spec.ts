import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { PayloadError } from './payload-error';
import { PayloadLimits, unpackPayload } from './payload-unpacker';
import { RawEntry, rawTar } from '../../../test/support/tar-fixtures';

const LIMITS: PayloadLimits = { maxFiles: 100, maxBytes: 64 * 1024 * 1024 };

/** The archive as a stream of small chunks, as it would arrive over HTTP. */
function streamOf(data: Buffer, chunkSize = 4096): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunkSize) {
    chunks.push(data.subarray(i, i + chunkSize));
  }
  return Readable.from(chunks);
}

/** A pax extended header ('x') that gives the next entry its path. */
function paxPath(path: string): RawEntry {
  const record = (len: number) => `${len} path=${path}\n`;
  let length = record(0).length;
  while (record(length).length !== length) {
    length = record(length).length;
  }
  return { path: 'PaxHeader/x', type: 'x', body: record(length) };
}

const MAIN: RawEntry = { path: 'main.json', body: '{"height": 1.8}' };
const FIRST_FILE: RawEntry = { path: 'data/ok.txt', body: 'fine' };

describe(unpackPayload.name, () => {
  let work: string;
  let dest: string;

  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'labgate-payload-'));
    dest = join(work, 'dest');
  });

  afterEach(() => {
    rmSync(work, { recursive: true, force: true });
  });

  /** Builds a tar.gz with `tar.c` from files written to a temp dir. */
  async function packed(files: Record<string, string | Buffer>, entries?: string[]) {
    const src = join(work, 'src');
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(src, path, '..'), { recursive: true });
      writeFileSync(join(src, path), content);
    }
    return buffer(tar.c({ gzip: true, cwd: src }, entries ?? readdirSync(src)));
  }

  async function refusal(archive: Buffer, limits = LIMITS): Promise<PayloadError> {
    const err: unknown = await unpackPayload(streamOf(archive), dest, limits).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PayloadError);
    expect(!existsSync(dest) || readdirSync(dest).length === 0).toBe(true);
    return err as PayloadError;
  }

  it('unpacks main.json and files in a subdirectory', async () => {
    const big = randomBytes(3 * 1024 * 1024);
    const archive = await packed({
      'main.json': '{"message": "hi", "volume": "in/scan.nii"}',
      'in/scan.nii': big,
      'in/notes.txt': 'hello',
    });

    const result = await unpackPayload(streamOf(archive), dest, LIMITS);

    expect(result.mainJson).toEqual({ message: 'hi', volume: 'in/scan.nii' });
    expect(result.files).toEqual(
      expect.arrayContaining([
        { path: 'in/scan.nii', size: big.length },
        { path: 'in/notes.txt', size: 5 },
      ]),
    );
    expect(result.files).toHaveLength(2);
    expect(readFileSync(join(dest, 'in/scan.nii')).equals(big)).toBe(true);
    expect(readFileSync(join(dest, 'in/notes.txt'), 'utf8')).toBe('hello');
    expect(existsSync(join(dest, 'main.json'))).toBe(false);
  });

  it('accepts an archive made with `tar -C dir .` (./-prefixed names)', async () => {
    const archive = await packed({ 'main.json': '{}', 'a.txt': 'a' }, ['.']);

    const result = await unpackPayload(streamOf(archive), dest, LIMITS);

    expect(result).toEqual({ mainJson: {}, files: [{ path: 'a.txt', size: 1 }] });
    expect(readFileSync(join(dest, 'a.txt'), 'utf8')).toBe('a');
  });

  it.each([
    ['../x', /"\.\." segment/],
    ['data/../../x', /"\.\." segment/],
    ['/etc/x', /absolute path/],
    ['a\\b', /backslash/],
    ['a//b', /empty segment/],
    ['a\u0001b', /control character/],
  ])('refuses the entry name %j with 400, keeping nothing', async (path, reason) => {
    const err = await refusal(gzipSync(rawTar([MAIN, FIRST_FILE, { path, body: 'x' }])));

    expect(err.status).toBe(400);
    expect(err.message).toMatch(reason);
    expect(err.entry).toBe(path);
    expect(existsSync(join(work, 'x'))).toBe(false);
  });

  it('refuses a ".." path given by a pax header', async () => {
    const archive = rawTar([MAIN, FIRST_FILE, paxPath('../../evil'), { path: 'ok', body: 'x' }]);
    const err = await refusal(gzipSync(archive));

    expect(err.status).toBe(400);
    expect(err.entry).toBe('../../evil');
  });

  it.each([
    ['a symbolic link to /', { path: 'root', type: '2', linkpath: '/' }, /symbolic link/],
    ['a symbolic link inside', { path: 'l', type: '2', linkpath: 'data/ok.txt' }, /symbolic/],
    ['a hard link', { path: 'hard', type: '1', linkpath: 'data/ok.txt' }, /hard link/],
    ['a character device', { path: 'null', type: '3' }, /character device/],
    ['a block device', { path: 'sda', type: '4' }, /block device/],
    ['a FIFO', { path: 'pipe', type: '6' }, /FIFO/],
    ['an unknown entry type', { path: 'acl', type: 'A', body: 'x' }, /unsupported type/],
  ])('refuses %s with 400, keeping nothing', async (_what, entry: RawEntry, reason) => {
    const err = await refusal(gzipSync(rawTar([MAIN, FIRST_FILE, entry])));

    expect(err.status).toBe(400);
    expect(err.message).toMatch(reason);
  });

  it('refuses more entries than maxFiles with 413', async () => {
    const archive = rawTar([MAIN, FIRST_FILE, { path: 'data/two.txt' }, { path: 'three.txt' }]);
    const err = await refusal(gzipSync(archive), { ...LIMITS, maxFiles: 3 });

    expect(err.status).toBe(413);
    expect(err.message).toMatch(/at most 3 files and directories/);
    expect(err.entry).toBe('three.txt');
  });

  it('refuses more unpacked bytes than maxBytes with 413', async () => {
    const archive = await packed({
      'main.json': '{}',
      'a.bin': Buffer.alloc(600),
      'b.bin': Buffer.alloc(600),
    });
    const err = await refusal(archive, { ...LIMITS, maxBytes: 1000 });

    expect(err.status).toBe(413);
    expect(err.message).toMatch(/1000-byte limit/);
  });

  it('refuses a single entry larger than the whole limit with 413 before writing it', async () => {
    const archive = rawTar([MAIN, FIRST_FILE, { path: 'huge.bin', body: Buffer.alloc(5000) }]);
    const err = await refusal(gzipSync(archive), { ...LIMITS, maxBytes: 4096 });

    expect(err.status).toBe(413);
    expect(err.message).toBe(
      'Payload entry "huge.bin" is 5000 bytes, more than the 4077 bytes left of the 4096-byte limit for a whole payload.',
    );
  });

  it('refuses an archive that is not gzip with 400', async () => {
    const err = await refusal(rawTar([MAIN]));

    expect(err.status).toBe(400);
    expect(err.message).toMatch(/not gzip-compressed/);
  });

  it('refuses an empty body with 400', async () => {
    const err = await refusal(Buffer.alloc(0));
    expect(err.status).toBe(400);
  });

  it('refuses gzip of something that is not tar with 400', async () => {
    const err = await refusal(gzipSync(randomBytes(4096)));

    expect(err.status).toBe(400);
    expect(err.message).toMatch(/gzip-compressed but not a valid tar archive/);
  });

  it('refuses corrupt gzip data with 400', async () => {
    const archive = gzipSync(rawTar([MAIN, FIRST_FILE]));
    archive.fill(0xff, 10, 40);
    const err = await refusal(archive);

    expect(err.status).toBe(400);
    expect(err.message).toMatch(/gzip data is corrupt/);
  });

  it('refuses a truncated archive with 400', async () => {
    const tarball = rawTar([MAIN, { path: 'data/big.bin', body: randomBytes(10_000) }]);
    const err = await refusal(gzipSync(tarball.subarray(0, 4096)));

    expect(err.status).toBe(400);
    expect(err.message).toMatch(/Truncated input/);
  });

  it('refuses a payload without main.json with 400', async () => {
    const err = await refusal(await packed({ 'in/a.txt': 'a' }));

    expect(err.status).toBe(400);
    expect(err.message).toMatch(/no main.json/);
  });

  it.each([
    ['an array', '[1, 2]', /not an array/],
    ['a number', '42', /not a number/],
    ['null', 'null', /not null/],
    ['invalid JSON', '{"a": ', /not valid JSON/],
  ])('refuses a main.json that is %s with 400', async (_what, json, reason) => {
    const err = await refusal(await packed({ 'main.json': json, 'in/a.txt': 'a' }));

    expect(err.status).toBe(400);
    expect(err.message).toMatch(reason);
  });

  it('refuses an entry listed twice with 400', async () => {
    const archive = rawTar([MAIN, FIRST_FILE, { ...FIRST_FILE, body: 'replaced' }]);
    const err = await refusal(gzipSync(archive));

    expect(err.status).toBe(400);
    expect(err.message).toMatch(/more than once/);
  });

  it('refuses a file and a folder of the same name with 400', async () => {
    const archive = rawTar([MAIN, { path: 'data', body: 'x' }, { path: 'data/y', body: 'y' }]);
    const err = await refusal(gzipSync(archive));

    expect(err.status).toBe(400);
    expect(err.message).toMatch(/clashes/);
  });

  it('removes what it wrote when the source fails midway, and passes the error on', async () => {
    const archive = gzipSync(rawTar([MAIN, { path: 'a.bin', body: randomBytes(200_000) }]));
    let sent = false;
    const source = new Readable({
      read() {
        if (!sent) {
          sent = true;
          this.push(archive.subarray(0, archive.length - 100));
        } else {
          this.destroy(new Error('client aborted'));
        }
      },
    });

    await expect(unpackPayload(source, dest, LIMITS)).rejects.toThrow('client aborted');
    expect(existsSync(dest)).toBe(false);
  });

  it('keeps a destination it did not create, emptied, after a refusal', async () => {
    mkdirSync(dest);
    await refusal(gzipSync(rawTar([MAIN, FIRST_FILE, { path: '../x' }])));
    expect(readdirSync(dest)).toEqual([]);
  });

  it('will not unpack into a destination that already holds files', async () => {
    mkdirSync(dest);
    writeFileSync(join(dest, 'precious'), 'keep me');

    await expect(unpackPayload(streamOf(rawTar([MAIN])), dest, LIMITS)).rejects.toThrow(
      /not empty/,
    );
    expect(readFileSync(join(dest, 'precious'), 'utf8')).toBe('keep me');
  });
});
