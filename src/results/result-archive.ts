import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { mediaTypeOf } from './media-types';
import type { Artifact } from './result.entity';

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);

/** Listing more than this many files of one archive would only bloat the result row. */
export const MAX_LISTED_ARTIFACTS = 10_000;

/**
 * The name a file of the archive is listed and fetched by: `/`-separated, no `./` in front.
 * Undefined for what is not plainly a file inside the archive (absolute, `..`, control
 * characters): such an entry is neither listed nor served.
 */
export function artifactName(raw: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(raw) || raw.startsWith('/')) {
    return undefined;
  }
  const segments = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.length === 0 || segments.includes('..')) {
    return undefined;
  }
  return segments.join('/');
}

/**
 * Feeds a tar(.gz) stream to a parser with backpressure, until the source ends or `stop()`
 * says so. Rejects on a source or archive error.
 */
async function feed(source: Readable, parser: Parser, stopped: () => boolean): Promise<void> {
  const failed = new Promise<never>((_, reject) => parser.once('error', reject));
  failed.catch(() => undefined);
  const ended = new Promise<void>((resolve) => parser.once('end', resolve));
  for await (const chunk of source as AsyncIterable<Buffer>) {
    if (stopped()) {
      source.destroy();
      return;
    }
    if (!parser.write(chunk)) {
      await Promise.race([once(parser, 'drain'), failed]);
    }
  }
  parser.end();
  await Promise.race([ended, failed]);
}

/** The regular files of an archive with their sizes and media types; streamed, never held. */
export async function listArtifacts(source: Readable): Promise<Artifact[]> {
  const parser = new Parser({ strict: true });
  const artifacts: Artifact[] = [];
  const seen = new Set<string>();
  parser.on('entry', (entry: ReadEntry) => {
    const name = artifactName(entry.path);
    if (
      name !== undefined &&
      FILE_TYPES.has(entry.type) &&
      !seen.has(name) &&
      artifacts.length < MAX_LISTED_ARTIFACTS
    ) {
      seen.add(name);
      artifacts.push({ name, size: entry.size, mediaType: mediaTypeOf(name) });
    }
    entry.resume();
  });
  await feed(source, parser, () => false);
  return artifacts;
}

/**
 * One file of an archive as a stream: the archive is read up to that entry (earlier entries
 * skipped), the entry's bytes are passed on with backpressure, and reading stops after it.
 * The stream fails if the archive ends without it; closing it stops the reading.
 */
export function extractArtifact(source: Readable, name: string): Readable {
  const out = new PassThrough();
  const parser = new Parser({ strict: true });
  let found = false;
  let done = false;
  out.once('close', () => {
    done = true;
    source.destroy();
  });
  parser.on('entry', (entry: ReadEntry) => {
    if (found || !FILE_TYPES.has(entry.type) || artifactName(entry.path) !== name) {
      entry.resume();
      return;
    }
    found = true;
    entry.on('end', () => {
      done = true;
    });
    entry.pipe(out);
  });
  feed(source, parser, () => done).then(
    () => {
      if (!found) {
        out.destroy(new Error(`the archive has no file ${JSON.stringify(name)}`));
      }
    },
    (err: Error) => out.destroy(err),
  );
  return out;
}
