import { quoteInput } from '../../common/caller-input';
import { PayloadError } from './payload-error';

export type EntryKind = 'file' | 'directory';

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
const REFUSED_TYPES: Record<string, string> = {
  Link: 'a hard link',
  SymbolicLink: 'a symbolic link',
  CharacterDevice: 'a character device',
  BlockDevice: 'a block device',
  FIFO: 'a FIFO (named pipe)',
};

/**
 * What an entry may be: a regular file or a directory. Every link is refused, whatever it points
 * at — deciding which targets are "inside" is where tar-slip bugs live, and a payload has no
 * need for links.
 */
export function entryKind(path: string, type: string): EntryKind {
  if (FILE_TYPES.has(type)) {
    return 'file';
  }
  if (type === 'Directory') {
    return 'directory';
  }
  const what = REFUSED_TYPES[type] ?? `of the unsupported type "${type}"`;
  throw refused(path, `is ${what}; a payload may hold only regular files and directories`);
}

/**
 * The entry's path relative to the destination, or `''` for the archive root (`./`). Refuses
 * rather than repairs: tar itself would strip a leading `/` and skip `..` with a warning, but a
 * payload that tries either is not one we want to half-unpack.
 */
export function entryPath(raw: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(raw)) {
    throw refused(raw, 'has a control character (such as NUL) in its name');
  }
  if (raw.includes('\\')) {
    throw refused(raw, 'has a backslash in its name; use / between folders');
  }
  if (raw.startsWith('/') || /^[a-zA-Z]:/.test(raw)) {
    throw refused(raw, 'has an absolute path; paths must be relative to the archive root');
  }
  const segments = raw.replace(/\/+$/, '').split('/');
  if (segments.includes('..')) {
    throw refused(raw, 'has a ".." segment, which would place it outside the payload');
  }
  if (segments.includes('')) {
    throw refused(raw, 'has an empty segment ("//") in its path');
  }
  return segments.filter((s) => s !== '.' && s !== '').join('/');
}

export function refused(path: string, why: string, status: 400 | 413 = 400): PayloadError {
  return new PayloadError(status, `Payload entry ${quoteInput(path)} ${why}.`, path);
}
