/**
 * Checks a storage key (`jobs/<id>/inputs/a.trc`) before it becomes a path on disk. Keys are
 * relative, `/`-separated and never name anything hidden: a leading-dot segment is refused, which
 * rules out `.` and `..` (no escaping the root) and keeps the driver's own `.tmp` out of reach.
 */
export function assertBlobKey(key: string): void {
  const problem = keyProblem(key);
  if (problem) {
    throw new Error(`Invalid storage key ${JSON.stringify(key)}: ${problem}`);
  }
}

/** A prefix is a key, optionally ending in `/` (everything under it). */
export function assertBlobPrefix(prefix: string): void {
  assertBlobKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}

function keyProblem(key: string): string | undefined {
  if (typeof key !== 'string' || key === '') {
    return 'it is empty';
  }
  if (key.includes('\0')) {
    return 'it contains a NUL character';
  }
  if (key.includes('\\')) {
    return 'it contains a backslash (use /)';
  }
  if (key.startsWith('/') || /^[a-zA-Z]:/.test(key)) {
    return 'it is absolute';
  }
  for (const segment of key.split('/')) {
    if (segment === '') {
      return 'it has an empty segment';
    }
    if (segment.startsWith('.')) {
      return `segment "${segment}" starts with a dot`;
    }
  }
  return undefined;
}
