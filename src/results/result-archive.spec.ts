import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { rawTar } from '../../test/support/tar-fixtures';
import { artifactName, extractArtifact, listArtifacts } from './result-archive';

/** The archive in small chunks, as storage would stream it. */
function streamOf(data: Buffer, chunkSize = 4096): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunkSize) {
    chunks.push(data.subarray(i, i + chunkSize));
  }
  return Readable.from(chunks);
}

describe('result archives', () => {
  let work: string;

  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'labgate-result-archive-'));
  });
  afterEach(() => rmSync(work, { recursive: true, force: true }));

  /** A tar.gz packed like the local runner packs outputs/ (entries relative to it). */
  async function outputs(files: Record<string, string | Buffer>): Promise<Buffer> {
    const dir = join(work, 'outputs');
    for (const [name, body] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), body);
    }
    const top = [...new Set(Object.keys(files).map((n) => n.split('/')[0]))];
    return buffer(tar.c({ gzip: true, cwd: dir, portable: true }, top));
  }

  it('lists regular files with size and media type, nested ones by path, directories not', async () => {
    const png = randomBytes(3000);
    const archive = await outputs({
      'metrics.json': '{"sum":3}',
      'plots/loss.png': png,
      'plots/deep/table.csv': 'a,b\n1,2\n',
      'volume.nii.gz': 'x',
      'blob.xyz': 'y',
    });
    const listed = await listArtifacts(streamOf(archive));
    expect(listed.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { name: 'blob.xyz', size: 1, mediaType: 'application/octet-stream' },
      { name: 'metrics.json', size: 9, mediaType: 'application/json' },
      { name: 'plots/deep/table.csv', size: 8, mediaType: 'text/csv' },
      { name: 'plots/loss.png', size: 3000, mediaType: 'image/png' },
      { name: 'volume.nii.gz', size: 1, mediaType: 'application/gzip' },
    ]);
  });

  it('extracts one nested file byte for byte, skipping the ones before it', async () => {
    const big = randomBytes(2 * 1024 * 1024);
    const wanted = randomBytes(70_000);
    const archive = await outputs({ 'a-first.bin': big, 'plots/b.png': wanted, 'z.txt': 'z' });
    const got = await buffer(extractArtifact(streamOf(archive, 1000), 'plots/b.png'));
    expect(got.equals(wanted)).toBe(true);
  });

  it('stops reading the archive once the file is out', async () => {
    const archive = await outputs({ 'a.txt': 'first', 'b.bin': randomBytes(4 * 1024 * 1024) });
    let read = 0;
    const source = streamOf(archive, 16 * 1024);
    source.on('data', (c: Buffer) => (read += c.length));
    expect((await buffer(extractArtifact(source, 'a.txt'))).toString()).toBe('first');
    await new Promise((r) => setImmediate(r));
    expect(read).toBeLessThan(archive.length / 2);
    expect(source.destroyed).toBe(true);
  });

  it('fails the stream when the archive has no such file', async () => {
    const archive = await outputs({ 'a.txt': 'x' });
    await expect(buffer(extractArtifact(streamOf(archive), 'b.txt'))).rejects.toThrow(
      /no file "b.txt"/,
    );
  });

  it('fails listing on something that is not a tar.gz', async () => {
    await expect(listArtifacts(streamOf(gzipSync(randomBytes(5000))))).rejects.toThrow();
  });

  it('neither lists nor serves entries that escape the archive or are links', async () => {
    const archive = gzipSync(
      rawTar([
        { path: './ok.txt', body: 'ok' },
        { path: '../escape.txt', body: 'no' },
        { path: '/etc/passwd', body: 'no' },
        { path: 'link', type: '2', linkpath: '/etc/passwd' },
        { path: 'dir/', type: '5' },
      ]),
    );
    expect(await listArtifacts(streamOf(archive))).toEqual([
      { name: 'ok.txt', size: 2, mediaType: 'text/plain' },
    ]);
    await expect(buffer(extractArtifact(streamOf(archive), '../escape.txt'))).rejects.toThrow(
      /no file/,
    );
  });

  it.each([
    ['./a/b.txt', 'a/b.txt'],
    ['a//b.txt', 'a/b.txt'],
    ['a/./b', 'a/b'],
    ['../a', undefined],
    ['a/../../b', undefined],
    ['/abs', undefined],
    ['./', undefined],
    ['a\\b', undefined],
    ['a\u0000b', undefined],
  ])('names %j as %j', (raw, name) => {
    expect(artifactName(raw)).toBe(name);
  });
});
