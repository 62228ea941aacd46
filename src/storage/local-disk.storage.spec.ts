import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { BlobTooLargeError } from './blob-storage';
import { LocalDiskStorage } from './local-disk.storage';

/** A stream of `total` bytes of `fill`, produced chunk by chunk with a pause between chunks. */
function generated(total: number, fill = 'x', chunkSize = 64 * 1024, delayMs = 0): Readable {
  const chunk = Buffer.alloc(chunkSize, fill);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const part = chunk.subarray(0, Math.min(chunkSize, total - sent));
      sent += part.length;
      if (delayMs > 0) {
        setTimeout(() => this.push(part), delayMs);
      } else {
        this.push(part);
      }
    },
  });
}

/** Emits `before` bytes, then fails, like an upload whose client went away. */
function failingAfter(before: number): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(Buffer.alloc(before, 'a'));
      } else {
        this.destroy(new Error('client aborted'));
      }
    },
  });
}

describe(LocalDiskStorage.name, () => {
  let root: string;
  let storage: LocalDiskStorage;

  const tempFiles = () => readdirSync(join(root, '.tmp'));

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'labgate-storage-'));
    storage = new LocalDiskStorage(root);
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('reads back what it wrote, with the right size and sha256', async () => {
    const body = 'hello, labgate\n';
    const stored = await storage.write('jobs/1/inputs/a.txt', Readable.from([body]));

    expect(stored).toEqual({
      key: 'jobs/1/inputs/a.txt',
      size: Buffer.byteLength(body),
      sha256: createHash('sha256').update(body).digest('hex'),
    });
    expect(await text(storage.read('jobs/1/inputs/a.txt'))).toBe(body);
    const info = await storage.stat('jobs/1/inputs/a.txt');
    expect(info?.size).toBe(Buffer.byteLength(body));
    // fs hands out Dates of Node's realm, not of the test sandbox: compare the time instead.
    expect(Math.abs(Date.now() - info!.modifiedAt.getTime())).toBeLessThan(60_000);
    expect(await storage.stat('jobs/1/inputs')).toBeUndefined();
    expect(await storage.stat('jobs/1/inputs/missing.txt')).toBeUndefined();
    expect(storage.localPath('jobs/1/inputs/a.txt')).toBe(join(root, 'jobs/1/inputs/a.txt'));
    expect(tempFiles()).toEqual([]);
  });

  it('reads a byte range, end inclusive', async () => {
    await storage.write('r.txt', Readable.from(['0123456789']));

    expect(await text(storage.read('r.txt', { start: 2, end: 5 }))).toBe('2345');
    expect(await text(storage.read('r.txt', { start: 7 }))).toBe('789');
  });

  it('refuses a blob over maxBytes and keeps neither the file nor its temp file', async () => {
    const write = storage.write('big.bin', generated(1024 * 1024), { maxBytes: 1000 });

    await expect(write).rejects.toBeInstanceOf(BlobTooLargeError);
    expect(existsSync(join(root, 'big.bin'))).toBe(false);
    expect(tempFiles()).toEqual([]);
  });

  it('accepts a blob of exactly maxBytes', async () => {
    const stored = await storage.write('exact.bin', generated(1000), { maxBytes: 1000 });
    expect(stored.size).toBe(1000);
  });

  it('keeps nothing when the source fails midway', async () => {
    await expect(storage.write('broken.bin', failingAfter(100_000))).rejects.toThrow(
      'client aborted',
    );
    expect(existsSync(join(root, 'broken.bin'))).toBe(false);
    expect(tempFiles()).toEqual([]);
  });

  it('leaves the old blob untouched when an overwrite fails', async () => {
    await storage.write('keep.txt', Readable.from(['old']));
    await expect(storage.write('keep.txt', failingAfter(10))).rejects.toThrow();
    expect(await readFile(join(root, 'keep.txt'), 'utf8')).toBe('old');
  });

  it('ends concurrent writes of one key with one complete file, never a mix', async () => {
    const size = 2 * 1024 * 1024;
    const writes = ['a', 'b', 'c'].map((fill) =>
      storage.write('same.bin', generated(size, fill, 16 * 1024, 1)),
    );
    await Promise.all(writes);

    const content = await readFile(join(root, 'same.bin'));
    expect(content.length).toBe(size);
    const first = String.fromCharCode(content[0]);
    expect(content.equals(Buffer.alloc(size, first))).toBe(true);
    expect(tempFiles()).toEqual([]);
  });

  it.each(['../x', '/etc/x', 'a//b', 'a\\b', '', 'a/../b', './a', '.tmp/x', 'a/', 'C:/x'])(
    'refuses the key %j',
    async (key) => {
      await expect(storage.write(key, Readable.from(['x']))).rejects.toThrow(/Invalid storage key/);
      expect(() => storage.read(key)).toThrow(/Invalid storage key/);
      await expect(storage.stat(key)).rejects.toThrow(/Invalid storage key/);
      expect(() => storage.localPath(key)).toThrow(/Invalid storage key/);
    },
  );

  it('refuses an escaping prefix in list and delete', async () => {
    await expect(storage.list('../')).rejects.toThrow(/Invalid storage key/);
    await expect(storage.delete('../')).rejects.toThrow(/Invalid storage key/);
    await expect(storage.delete('/')).rejects.toThrow(/Invalid storage key/);
  });

  it('lists keys under a prefix recursively, without temp files', async () => {
    await storage.write('jobs/1/inputs/a.txt', Readable.from(['a']));
    await storage.write('jobs/1/outputs/deep/b.txt', Readable.from(['b']));
    await storage.write('jobs/10/inputs/c.txt', Readable.from(['c']));
    writeFileSync(join(root, '.tmp', 'in-flight.part'), 'partial');

    expect(await storage.list('jobs/1/')).toEqual([
      'jobs/1/inputs/a.txt',
      'jobs/1/outputs/deep/b.txt',
    ]);
    expect(await storage.list('jobs/1')).toHaveLength(3);
    expect(await storage.list('')).toHaveLength(3);
    expect(await storage.list('nothing/here/')).toEqual([]);
  });

  it('deletes a key, a whole prefix, and accepts what is already missing', async () => {
    await storage.write('jobs/1/inputs/a.txt', Readable.from(['a']));
    await storage.write('jobs/1/outputs/b.txt', Readable.from(['b']));
    await storage.write('jobs/2/inputs/c.txt', Readable.from(['c']));

    await storage.delete('jobs/2/inputs/c.txt');
    expect(await storage.stat('jobs/2/inputs/c.txt')).toBeUndefined();

    await storage.delete('jobs/1/');
    expect(existsSync(join(root, 'jobs/1'))).toBe(false);
    expect(await storage.list('jobs/')).toEqual([]);

    await expect(storage.delete('jobs/1/')).resolves.toBeUndefined();
    await expect(storage.delete('never/was.txt')).resolves.toBeUndefined();
  });

  it('removes temp files older than an hour when it starts, and only those', () => {
    const stale = join(root, '.tmp', 'crashed.part');
    const fresh = join(root, '.tmp', 'writing.part');
    writeFileSync(stale, 'left by a crash');
    writeFileSync(fresh, 'another process is writing');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(stale, twoHoursAgo, twoHoursAgo);

    new LocalDiskStorage(root);

    expect(tempFiles()).toEqual(['writing.part']);
  });

  it('removes at start the temp files of a process of this host that is gone, at any age', () => {
    const host = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
    const gone = spawnSync(process.execPath, ['-e', '']).pid; // has exited
    const write = (pid: number, on = host) => {
      const name = `${randomUUID()}.${pid}.${on}.part`;
      writeFileSync(join(root, '.tmp', name), 'partial');
      return name;
    };
    write(gone);
    const mine = write(process.pid);
    const otherHost = write(gone, 'elsewhere.example');
    new LocalDiskStorage(root);
    expect(tempFiles().sort()).toEqual([mine, otherHost].sort());
  });

  it('names its temp files after the writing process', async () => {
    let seen: string[] = [];
    const source = new Readable({
      read() {
        seen = tempFiles();
        this.push(seen.length ? null : Buffer.from('x'));
      },
    });
    await storage.write('named.txt', source);
    expect(seen).toEqual([expect.stringMatching(new RegExp(`^[0-9a-f-]{36}\\.${process.pid}\\.`))]);
  });

  it('creates its root when missing', () => {
    const fresh = join(root, 'nested', 'store');
    new LocalDiskStorage(fresh);
    expect(existsSync(join(fresh, '.tmp'))).toBe(true);
  });

  it('reads a large source only as fast as the disk takes it (never buffered whole)', async () => {
    // Memory use itself is measured in bench/submit.ts (RSS under a 1 GB upload); RSS in a
    // jest worker depends on what else runs. What keeps it flat is backpressure: the source
    // is never read far ahead of what reached the temp file, which this checks deterministically.
    const total = 64 * 1024 * 1024;
    const chunkSize = 1024 * 1024;
    const chunk = Buffer.alloc(chunkSize, 'y');
    let produced = 0;
    let furthestAhead = 0;
    const source = new Readable({
      highWaterMark: chunkSize,
      read() {
        const [part] = readdirSync(join(root, '.tmp'));
        const onDisk = part ? statSync(join(root, '.tmp', part)).size : 0;
        furthestAhead = Math.max(furthestAhead, produced - onDisk);
        if (produced >= total) {
          this.push(null);
          return;
        }
        produced += chunkSize;
        this.push(chunk);
      },
    });

    const stored = await storage.write('large.bin', source);

    expect(stored.size).toBe(total);
    expect(furthestAhead).toBeGreaterThan(0);
    expect(furthestAhead).toBeLessThanOrEqual(8 * chunkSize);
  });

  it('stores a write that is synced to disk as it goes (past 64 MiB) whole and in order', async () => {
    const total = 150 * 1024 * 1024 + 123;
    const sent = createHash('sha256');
    let produced = 0;
    let n = 0;
    const source = new Readable({
      read() {
        if (produced >= total) {
          this.push(null);
          return;
        }
        const part = Buffer.alloc(Math.min(256 * 1024 + 13, total - produced), n++ % 251);
        produced += part.length;
        sent.update(part);
        this.push(part);
      },
    });
    const stored = await storage.write('synced.bin', source);
    const digest = sent.digest('hex');
    expect(stored).toEqual({ key: 'synced.bin', size: total, sha256: digest });
    const onDisk = createHash('sha256');
    for await (const chunk of storage.read('synced.bin')) {
      onDisk.update(chunk as Buffer);
    }
    expect(onDisk.digest('hex')).toBe(digest);
    expect(readdirSync(join(root, '.tmp'))).toEqual([]);
  });
});
