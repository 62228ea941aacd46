import { gzipSync } from 'node:zlib';
import { rawTar, type RawEntry } from '../tar-fixtures';

const MAIN = { path: 'main.json', body: JSON.stringify({ message: 'hi', file: 'notes.txt' }) };
const NOTES = { path: 'notes.txt', body: 'some notes' };
/** Where the header of NOTES starts in rawTar([MAIN, NOTES]): after MAIN's header and body. */
const NOTES_HEADER = 1024;

/** Sets the size field of the tar header at `offset` (octal, or base-256 when `binary`). */
function patchSize(tar: Buffer, offset: number, size: bigint, binary = false, lead = 0x80): Buffer {
  const out = Buffer.from(tar);
  const field = out.subarray(offset + 124, offset + 136);
  if (binary) {
    field.fill(0);
    field[0] = lead;
    let rest = size;
    for (let i = 11; i > 0; i--) {
      field[i] = Number(rest & 0xffn);
      rest >>= 8n;
    }
  } else {
    field.write(size.toString(8).padStart(11, '0') + '\0', 'ascii');
  }
  out.fill(' ', offset + 148, offset + 156);
  let sum = 0;
  for (const byte of out.subarray(offset, offset + 512)) {
    sum += byte;
  }
  out.write(sum.toString(8).padStart(6, '0') + '\0 ', offset + 148, 8, 'ascii');
  return out;
}

/** A pax extended header entry ('x') that renames the next entry. */
function pax(path: string): RawEntry {
  const record = (len: number) => `${len} path=${path}\n`;
  let len = record(0).length;
  while (record(len).length !== len) {
    len = record(len).length;
  }
  return { path: 'PaxHeader', type: 'x', body: record(len) };
}

/**
 * TOMAAT payloads (for the `echo` service: main.json names notes.txt) that must be refused:
 * broken compression, escapes, links, devices, lying sizes, too many entries, too many bytes.
 * Each with a name for the report.
 */
export function evilArchives(limits: { maxFiles: number; maxBytes: number }) {
  const good = rawTar([MAIN, NOTES]);
  const gz = gzipSync(good);
  return {
    'truncated gzip': gz.subarray(0, Math.floor(gz.length / 2)),
    'gzip header only': gz.subarray(0, 10),
    'not gzip at all': Buffer.from('this is not a tar.gz'),
    'gzip of something not tar': gzipSync(Buffer.from('hello '.repeat(500))),
    'tar without gzip': good,
    'tar cut inside a header': gzipSync(good.subarray(0, 700)),
    'tar cut inside a file': gzipSync(good.subarray(0, 1024 + 5)),
    'entry with ..': gzipSync(rawTar([MAIN, NOTES, { path: '../../escaped.txt', body: 'x' }])),
    'entry with an absolute path': gzipSync(
      rawTar([MAIN, NOTES, { path: '/tmp/abs.txt', body: 'x' }]),
    ),
    'pax path with a NUL': gzipSync(rawTar([MAIN, pax('a\u0000b.txt'), NOTES])),
    'entry with a backslash': gzipSync(
      rawTar([MAIN, NOTES, { path: '..\\..\\evil.txt', body: 'x' }]),
    ),
    'symlink out': gzipSync(
      rawTar([MAIN, { path: 'notes.txt', type: '2', linkpath: '/etc/passwd' }]),
    ),
    'symlink dir then a file through it': gzipSync(
      rawTar([
        MAIN,
        NOTES,
        { path: 'd', type: '2', linkpath: '/tmp' },
        { path: 'd/x.txt', body: 'x' },
      ]),
    ),
    'hard link out': gzipSync(rawTar([MAIN, NOTES, { path: 'h', type: '1', linkpath: '../../x' }])),
    'character device': gzipSync(rawTar([MAIN, NOTES, { path: 'dev', type: '3' }])),
    fifo: gzipSync(rawTar([MAIN, NOTES, { path: 'fifo', type: '6' }])),
    'pax header renaming to ..': gzipSync(rawTar([MAIN, pax('../../pax-escape.txt'), NOTES])),
    'gnu long name with ..': gzipSync(
      rawTar([MAIN, { path: '././@LongLink', type: 'L', body: '../../long-escape.txt\0' }, NOTES]),
    ),
    'header claiming 8 GiB': gzipSync(patchSize(good, NOTES_HEADER, 0o77777777777n)),
    'base-256 size of 2^64': gzipSync(patchSize(good, NOTES_HEADER, 2n ** 64n - 1n, true)),
    'negative base-256 size': gzipSync(patchSize(good, NOTES_HEADER, 2n ** 88n - 1n, true, 0xff)),
    'corrupt checksum': gzipSync(
      Buffer.concat([good.subarray(0, 148), Buffer.from('9999999\0'), good.subarray(156)]),
    ),
    'no main.json': gzipSync(rawTar([NOTES])),
    'main.json not JSON': gzipSync(rawTar([{ path: 'main.json', body: '{nope' }, NOTES])),
    'main.json an array': gzipSync(rawTar([{ path: 'main.json', body: '[1,2]' }, NOTES])),
    'main.json over 1 MiB': gzipSync(
      rawTar([{ path: 'main.json', body: JSON.stringify({ message: 'x'.repeat(1_100_000) }) }]),
    ),
    'main.json naming a missing file': gzipSync(
      rawTar([{ path: 'main.json', body: JSON.stringify({ message: 'hi', file: 'nope.txt' }) }]),
    ),
    'main.json naming ../': gzipSync(
      rawTar([
        { path: 'main.json', body: JSON.stringify({ message: 'hi', file: '../main.json' }) },
      ]),
    ),
    'the same file twice': gzipSync(rawTar([MAIN, NOTES, NOTES])),
    'too many entries': gzipSync(
      rawTar([
        MAIN,
        NOTES,
        ...Array.from({ length: limits.maxFiles + 5 }, (_, i) => ({
          path: `f${i}.txt`,
          body: 'x',
        })),
      ]),
    ),
    'gzip bomb past the byte limit': gzipSync(
      rawTar([MAIN, NOTES, { path: 'zeros.bin', body: Buffer.alloc(limits.maxBytes + 1024) }]),
    ),
  } satisfies Record<string, Buffer>;
}
