import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Parser, ReadEntry } from 'tar';
import { entryKind, entryPath, refused } from './payload-entry';
import { PayloadError } from './payload-error';

export interface PayloadLimits {
  /** Most entries (files and directories, main.json included). */
  maxFiles: number;
  /** Most bytes of all files together, unpacked. */
  maxBytes: number;
}

export interface UnpackedPayload {
  /** The parsed `main.json`: always a JSON object. */
  mainJson: unknown;
  /** Every regular file but `main.json`, relative to the destination, in archive order. */
  files: Array<{ path: string; size: number }>;
}

const MAIN_JSON = 'main.json';
const MAIN_JSON_MAX_BYTES = 1024 * 1024;

/**
 * Unpacks a TOMAAT-style payload — a tar.gz holding `main.json` (the input values) and files —
 * into `destDir`, which must be absent or empty. The archive is streamed, never held whole.
 *
 * Refuses with a {@link PayloadError} anything that is not plainly a file or directory inside
 * `destDir`, or that is over a limit; after a refusal (or any other error, such as the source
 * failing) nothing of the payload remains and `destDir` is as it was. On a refusal the source is
 * destroyed rather than read to its end.
 */
export async function unpackPayload(
  source: Readable,
  destDir: string,
  limits: PayloadLimits,
): Promise<UnpackedPayload> {
  const root = resolve(destDir);
  const created = await mkdir(root, { recursive: true });
  if (created === undefined && (await readdir(root)).length > 0) {
    throw new Error(`unpackPayload needs an empty destination, and ${root} is not empty`);
  }
  try {
    return await new PayloadUnpacking(root, limits).run(source);
  } catch (err) {
    if (created !== undefined) {
      await rm(created, { recursive: true, force: true });
    } else {
      for (const name of await readdir(root)) {
        await rm(join(root, name), { recursive: true, force: true });
      }
    }
    throw err;
  }
}

/** One unpacking: the tar parser's events in, files out, the first error stops everything. */
class PayloadUnpacking {
  private readonly parser = new Parser({ strict: true });
  private error?: Error;
  private rejectFailure!: (err: Error) => void;
  /** Rejects with the first error; raced against every wait so that nothing waits forever. */
  private readonly failure = new Promise<never>((_, reject) => (this.rejectFailure = reject));
  /** Stops the file writes in flight once something failed. */
  private readonly stop = new AbortController();
  private readonly tasks: Promise<void>[] = [];
  private readonly seen = new Set<string>();
  private readonly files: UnpackedPayload['files'] = [];
  private mainJson?: Buffer[];
  private entries = 0;
  private bytes = 0;

  constructor(
    private readonly root: string,
    private readonly limits: PayloadLimits,
  ) {
    this.failure.catch(() => undefined);
    // strict: tar's warnings (bad checksum, truncated input, not an archive) become errors.
    this.parser.on('entry', (entry: ReadEntry) => this.onEntry(entry));
    // Entry types tar does not understand are skipped silently unless refused here.
    this.parser.on('ignoredEntry', (entry: ReadEntry) =>
      this.fail(refused(entry.path, `is of the unsupported type "${entry.type}"`)),
    );
    this.parser.on('error', (err: Error) => this.fail(archiveError(err)));
  }

  async run(source: Readable): Promise<UnpackedPayload> {
    const ended = new Promise<void>((resolve) => this.parser.on('end', resolve));
    try {
      await this.feed(source);
      await Promise.race([ended, this.failure]);
      await Promise.race([Promise.all(this.tasks), this.failure]);
    } catch (err) {
      this.fail(err as Error);
    }
    if (this.error) {
      // fail() stopped the writes in flight; wait for them, so that cleanup comes after them.
      await Promise.all(this.tasks);
      throw this.error;
    }
    return { mainJson: this.parseMainJson(), files: this.files };
  }

  private async feed(source: Readable): Promise<void> {
    let head: Buffer | undefined = Buffer.alloc(0);
    for await (const data of source as AsyncIterable<Buffer | string>) {
      if (this.error) {
        break;
      }
      let chunk = Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (head) {
        // tar would also take plain or zstd tar; a payload is tar.gz, so look for gzip's magic.
        head = Buffer.concat([head, chunk]);
        if (head.length < 2) {
          continue;
        }
        if (head[0] !== 0x1f || head[1] !== 0x8b) {
          throw notGzip();
        }
        chunk = head;
        head = undefined;
      }
      if (!this.parser.write(chunk)) {
        await Promise.race([once(this.parser, 'drain'), this.failure]);
      }
    }
    if (head) {
      throw notGzip();
    }
    this.parser.end();
  }

  private onEntry(entry: ReadEntry): void {
    if (this.error) {
      entry.resume();
      return;
    }
    try {
      this.accept(entry);
    } catch (err) {
      entry.resume();
      this.fail(err as Error);
    }
  }

  private accept(entry: ReadEntry): void {
    this.entries += 1;
    if (this.entries > this.limits.maxFiles) {
      throw refused(
        entry.path,
        `is one too many: a payload may hold at most ${this.limits.maxFiles} files and directories`,
        413,
      );
    }
    const path = entryPath(entry.path);
    if (entryKind(entry.path, entry.type) === 'directory') {
      entry.resume();
      if (path !== '') {
        this.track(entry.path, mkdir(this.target(path), { recursive: true }));
      }
      return;
    }
    if (path === '') {
      throw refused(entry.path, 'is a file without a name');
    }
    if (this.seen.has(path)) {
      throw refused(entry.path, 'appears more than once in the archive');
    }
    this.seen.add(path);
    this.reserve(entry.path, entry.size);

    if (path === MAIN_JSON) {
      if (entry.size > MAIN_JSON_MAX_BYTES) {
        throw refused(entry.path, `is ${entry.size} bytes; it may be at most 1 MiB`, 413);
      }
      const chunks: Buffer[] = (this.mainJson = []);
      entry.on('data', (chunk: Buffer) => chunks.push(chunk));
      return;
    }
    const body = new PassThrough();
    entry.pipe(body);
    this.files.push({ path, size: entry.size });
    this.track(entry.path, this.writeFile(path, body));
  }

  private reserve(path: string, size: number): void {
    const left = this.limits.maxBytes - this.bytes;
    if (size > left) {
      throw refused(
        path,
        `is ${size} bytes, more than the ${left} bytes left of the ${this.limits.maxBytes}-byte limit for a whole payload`,
        413,
      );
    }
    this.bytes += size;
  }

  private async writeFile(path: string, body: PassThrough): Promise<void> {
    const target = this.target(path);
    await mkdir(dirname(target), { recursive: true });
    // Checked right before the file is opened (no await in between): once the unpacking has
    // failed no new file may appear, or it could appear after the cleanup.
    if (this.stop.signal.aborted) {
      return;
    }
    // `wx`: never write through or over anything already there. The signal destroys both
    // streams on failure, and pipeline settles only once the file is closed.
    const file = createWriteStream(target, { flags: 'wx' });
    await pipeline(body, file, { signal: this.stop.signal });
  }

  /** `path` was checked by {@link entryPath}; this only guards against a mistake there. */
  private target(path: string): string {
    const target = join(this.root, path);
    if (!target.startsWith(this.root + sep)) {
      throw new Error(`payload path ${path} escapes ${this.root}`);
    }
    return target;
  }

  private track(entryName: string, work: Promise<unknown>): void {
    this.tasks.push(
      work.then(
        () => undefined,
        (err: NodeJS.ErrnoException) => this.fail(fileSystemError(entryName, err)),
      ),
    );
  }

  private fail(err: Error): void {
    if (!this.error) {
      this.error = err;
      this.rejectFailure(err);
      this.stop.abort(err);
    }
  }

  private parseMainJson(): unknown {
    if (!this.mainJson) {
      throw new PayloadError(
        400,
        'The payload has no main.json at its root; it must hold main.json with the input values.',
      );
    }
    let value: unknown;
    try {
      value = JSON.parse(Buffer.concat(this.mainJson).toString('utf8'));
    } catch (err) {
      throw new PayloadError(
        400,
        `The payload's main.json is not valid JSON (${(err as Error).message}).`,
        MAIN_JSON,
      );
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      const found =
        value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
      throw new PayloadError(
        400,
        `The payload's main.json must be a JSON object of input values, not ${found}.`,
        MAIN_JSON,
      );
    }
    return value;
  }
}

function notGzip(): PayloadError {
  return new PayloadError(400, 'The payload is not gzip-compressed; send a tar.gz archive.');
}

/** tar's own complaints: bad gzip data, bad checksums, truncation, not a tar at all. */
function archiveError(err: Error & { code?: string }): PayloadError {
  if (err.message.startsWith('zlib:') || err.code?.startsWith('Z_')) {
    return new PayloadError(400, `The payload's gzip data is corrupt (${err.message}).`);
  }
  if (err.message.includes('decompression ratio')) {
    // tar's guard against decompression bombs (default 1000:1), kept on top of maxBytes.
    return new PayloadError(400, `The payload is compressed suspiciously well (${err.message}).`);
  }
  return new PayloadError(
    400,
    `The payload is gzip-compressed but not a valid tar archive (${err.message}).`,
  );
}

function fileSystemError(entryName: string, err: NodeJS.ErrnoException): Error {
  switch (err.code) {
    case 'EEXIST':
    case 'ENOTDIR':
    case 'EISDIR':
      return refused(entryName, 'clashes with another entry (a file and a folder of one name)');
    case 'ENAMETOOLONG':
      return refused(entryName, 'has a name too long for the file system');
    default:
      return err;
  }
}
