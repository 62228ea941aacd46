import type { Readable } from 'node:stream';

/**
 * What each stage of a write buffers before it asks the one before to wait. Node's default
 * (16 KiB) is smaller than one socket read (64 KiB): every chunk would stop the stream, and
 * every chunk would be its own write(2). A MiB lets the file stream write several at once.
 */
export const STREAM_BUFFER = { highWaterMark: 1024 * 1024 } as const;

export interface StoredBlob {
  key: string;
  size: number;
  sha256: string;
}

/** The write would exceed the allowed size; nothing was kept. */
export class BlobTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`more than ${limit} bytes`);
    this.name = 'BlobTooLargeError';
  }
}

/**
 * Where job inputs and results live. Keys are relative paths such as `jobs/<id>/inputs/a.trc`.
 * Writes go to a temp file and are renamed into place, so that a reader never sees a partial
 * blob and an aborted write leaves nothing behind.
 */
export abstract class BlobStorage {
  /** Streams `source` to `key`; rejects (keeping nothing) past `maxBytes` or on a source error. */
  abstract write(
    key: string,
    source: Readable,
    options?: { maxBytes?: number },
  ): Promise<StoredBlob>;
  abstract read(key: string, range?: { start: number; end?: number }): Readable;
  abstract stat(key: string): Promise<{ size: number; modifiedAt: Date } | undefined>;
  /** Keys under a prefix (`jobs/<id>/`), recursively. */
  abstract list(prefix: string): Promise<string[]>;
  /** Removes a key, or everything under a prefix ending in `/`. Missing is fine. */
  abstract delete(keyOrPrefix: string): Promise<void>;
  /** A local file path for a key when the driver has one (the local runner copies from it). */
  abstract localPath(key: string): string | undefined;
}
