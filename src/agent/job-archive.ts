import { readdir, stat } from 'node:fs/promises';
import * as tar from 'tar';

/** The inputs archive holds something the agent will not unpack. */
export class ArchiveRefusedError extends Error {
  override name = 'ArchiveRefusedError';
}

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
const TYPE_NAMES: Record<string, string> = {
  Link: 'a hard link',
  SymbolicLink: 'a symbolic link',
  CharacterDevice: 'a character device',
  BlockDevice: 'a block device',
  FIFO: 'a FIFO (named pipe)',
};

/**
 * Why an archive entry may not be unpacked, or undefined when it may. Links are refused
 * whatever they point at (an inputs archive has no use for them, and judging targets is where
 * tar-slip bugs live); paths must stay below the work dir.
 */
export function entryRefusal(path: string, type: string): string | undefined {
  if (!FILE_TYPES.has(type) && type !== 'Directory') {
    const what = TYPE_NAMES[type] ?? `of the unsupported type "${type}"`;
    return `is ${what}; only files and folders are unpacked`;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) {
    return 'has a control character in its name';
  }
  if (path.includes('\\')) {
    return 'has a backslash in its name';
  }
  if (path.startsWith('/') || /^[a-zA-Z]:/.test(path)) {
    return 'has an absolute path';
  }
  if (path.split('/').includes('..')) {
    return 'has a ".." segment, which would place it outside the work dir';
  }
  return undefined;
}

/**
 * Unpacks the job's inputs tar.gz (`inputs.json`, `inputs/…`) into `dir`, which must exist.
 * `strict` makes tar's own warnings (bad archive, truncated data) errors; the filter refuses
 * links, devices and escaping paths, which tar would otherwise create, skip or rewrite. After
 * a refusal, `dir` may hold part of the archive: the caller removes it.
 */
export async function extractInputs(archive: string, dir: string): Promise<void> {
  let problem: string | undefined;
  try {
    await tar.x({
      file: archive,
      cwd: dir,
      strict: true,
      preserveOwner: false, // as root, tar would otherwise chown to the archive's uids
      filter: (path, entry) => {
        const why = entryRefusal(path, 'type' in entry ? entry.type : 'File');
        if (why) {
          problem ??= `entry ${JSON.stringify(path)} ${why}`;
        }
        return problem === undefined;
      },
    });
  } catch (err) {
    throw new ArchiveRefusedError(
      `the inputs archive cannot be unpacked: ${(err as Error).message}`,
    );
  }
  if (problem) {
    throw new ArchiveRefusedError(`the inputs archive was refused: ${problem}`);
  }
}

/**
 * Packs everything in `outputsDir` into the tar.gz `file`, as a local run packs its outputs
 * (same options, so a result looks the same wherever it ran). Returns its size in bytes.
 */
export async function packOutputs(outputsDir: string, file: string): Promise<number> {
  const entries = await readdir(outputsDir);
  await tar.c(
    { gzip: true, cwd: outputsDir, portable: true, file },
    entries.length ? entries : ['.'],
  );
  return (await stat(file)).size;
}
