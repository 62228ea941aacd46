import { Logger } from '@nestjs/common';
import { createHash, randomUUID } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  fdatasync,
  type WriteStream,
  mkdirSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertBlobKey, assertBlobPrefix } from './blob-key';
import { BlobStorage, BlobTooLargeError, StoredBlob, STREAM_BUFFER } from './blob-storage';

/** A large write is synced every this many bytes as it goes. */
const SYNC_EVERY = 64 * 1024 * 1024;

/**
 * Sends a large file's written data to disk while more of it arrives (fdatasync every
 * SYNC_EVERY bytes, one at a time), so that the fsync before the rename finds little left to
 * do: without it the whole file waits in the page cache for that fsync, seconds for a GiB.
 * A failed sync fails the write (its error would not be reported again to the final fsync).
 */
class SyncAsItGoes {
  private syncedAt = 0;
  private syncing?: Promise<void>;
  private failure?: Error;

  constructor(private readonly file: WriteStream) {}

  /** `size` bytes have gone to the file stream; the error of a sync that failed, if any. */
  written(size: number): Error | undefined {
    const fd = (this.file as unknown as { fd: number | null }).fd;
    if (!this.failure && !this.syncing && fd !== null && size - this.syncedAt >= SYNC_EVERY) {
      this.syncedAt = size;
      this.syncing = new Promise<void>((resolve) =>
        fdatasync(fd, (err) => {
          this.failure ??= err ?? undefined;
          this.syncing = undefined;
          resolve();
        }),
      );
    }
    return this.failure;
  }

  /** Once no sync is under way (before the file stream ends): a failed sync's error, if any. */
  async done(): Promise<Error | undefined> {
    await this.syncing;
    return this.failure;
  }
}

/** Temp files older than this were left by a crash, not by a write still in progress. */
const STALE_TEMP_MS = 60 * 60 * 1000;
const TEMP_DIR = '.tmp';
/**
 * Temp files are named after the process that writes them (`<uuid>.<pid>.<host>.part`), so that
 * a process starting on this host removes at once what a killed one left (a 500 MB upload cut
 * short, say) instead of keeping it for an hour: its writer is provably gone. Another host's
 * files (a shared volume) fall back to the age rule.
 */
const HOST = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
const TEMP_NAME = /^[0-9a-f-]{36}\.(\d+)\.(.+)\.part$/;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The temp file was written by a process of this host that no longer runs. */
function writerIsGone(name: string): boolean {
  const match = TEMP_NAME.exec(name);
  if (!match || match[2] !== HOST) {
    return false;
  }
  const pid = Number(match[1]);
  return pid !== process.pid && !isAlive(pid);
}

/**
 * Blobs as files under one root directory. Writes go to `<root>/.tmp/` (same filesystem, so the
 * final `rename` is atomic): a reader sees the whole blob or nothing, and two writers of one key
 * leave one of the two complete files, never a mix.
 */
export class LocalDiskStorage extends BlobStorage {
  private readonly logger = new Logger(LocalDiskStorage.name);
  private readonly tempDir: string;

  constructor(private readonly root: string) {
    super();
    this.tempDir = join(root, TEMP_DIR);
    mkdirSync(this.tempDir, { recursive: true });
    this.removeStaleTempFiles();
  }

  async write(key: string, source: Readable, options?: { maxBytes?: number }): Promise<StoredBlob> {
    assertBlobKey(key);
    const maxBytes = options?.maxBytes;
    const target = join(this.root, key);
    const temp = join(this.tempDir, `${randomUUID()}.${process.pid}.${HOST}.part`);
    const hash = createHash('sha256');
    let size = 0;
    const file = createWriteStream(temp, { flags: 'wx', flush: true, ...STREAM_BUFFER });
    const syncs = new SyncAsItGoes(file);
    const meter = new Transform({
      ...STREAM_BUFFER,
      transform(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        if (maxBytes !== undefined && size > maxBytes) {
          callback(new BlobTooLargeError(maxBytes));
          return;
        }
        hash.update(chunk);
        callback(syncs.written(size), chunk);
      },
      flush(callback) {
        void syncs.done().then(callback);
      },
    });

    try {
      // `flush` fsyncs before close, so a rename never publishes data still in the page cache.
      // pipeline destroys every stream on the first error (source error, abort, too large) and
      // settles only once the file is closed, so the temp file can be removed right after.
      await pipeline(source, meter, file);
      await mkdir(dirname(target), { recursive: true });
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    return { key, size, sha256: hash.digest('hex') };
  }

  /** `range.end` is inclusive, as in HTTP `Range` and `fs.createReadStream`. */
  read(key: string, range?: { start: number; end?: number }): Readable {
    assertBlobKey(key);
    return createReadStream(
      join(this.root, key),
      range ? { start: range.start, end: range.end } : {},
    );
  }

  async stat(key: string): Promise<{ size: number; modifiedAt: Date } | undefined> {
    assertBlobKey(key);
    try {
      const info = await stat(join(this.root, key));
      return info.isFile() ? { size: info.size, modifiedAt: info.mtime } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return undefined;
      }
      throw err;
    }
  }

  /** Like S3: every key that starts with `prefix` (`jobs/1/` or `jobs/1/out`); `''` lists all. */
  async list(prefix: string): Promise<string[]> {
    if (prefix !== '') {
      assertBlobPrefix(prefix);
    }
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const keys: string[] = [];
    await this.walk(join(this.root, base), keys);
    return keys.filter((k) => k.startsWith(prefix)).sort();
  }

  async delete(keyOrPrefix: string): Promise<void> {
    assertBlobPrefix(keyOrPrefix);
    const path = join(this.root, keyOrPrefix);
    if (keyOrPrefix.endsWith('/')) {
      await rm(path, { recursive: true, force: true });
      return;
    }
    // A key naming a directory throws: removing a whole tree needs the explicit `prefix/`.
    await rm(path, { force: true });
  }

  localPath(key: string): string {
    assertBlobKey(key);
    return join(this.root, key);
  }

  private async walk(dir: string, into: string[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        return;
      }
      throw err;
    }
    for (const entry of entries) {
      // Dot names are never keys; at the root this skips the temp directory.
      if (entry.name.startsWith('.')) {
        continue;
      }
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        await this.walk(path, into);
      } else if (entry.isFile()) {
        into.push(relative(this.root, path).split(sep).join('/'));
      }
    }
  }

  /**
   * A crash mid-write leaves its temp file: removed when its writer is gone (see TEMP_NAME), or
   * else once it is an hour old, far longer than any write in flight.
   */
  private removeStaleTempFiles(): void {
    const cutoff = Date.now() - STALE_TEMP_MS;
    for (const name of readdirSync(this.tempDir)) {
      const path = join(this.tempDir, name);
      try {
        if (writerIsGone(name) || statSync(path).mtimeMs < cutoff) {
          rmSync(path, { recursive: true, force: true });
          this.logger.warn(`Removed stale temp file ${path} (left by an interrupted write)`);
        }
      } catch (err) {
        this.logger.warn(`Could not remove stale temp file ${path}: ${(err as Error).message}`);
      }
    }
  }
}
