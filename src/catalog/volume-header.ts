import { constants, gunzipSync } from 'node:zlib';

/** The medical image formats whose header labgate can check, by file extension. */
export const VOLUME_EXTENSIONS = ['.nii', '.nii.gz', '.nrrd', '.nhdr'] as const;
export type VolumeExtension = (typeof VOLUME_EXTENSIONS)[number];

/**
 * How much of a file's start `checkVolumeHeader` wants. A NIfTI header is 348 or 540 bytes;
 * gzip-compressed, it takes far fewer, so the first 4 KiB are plenty.
 */
export const VOLUME_HEADER_BYTES = 4096;

const NIFTI = [
  { version: 1, sizeofHdr: 348, magicAt: 344, magics: ['n+1\0', 'ni1\0'] },
  { version: 2, sizeofHdr: 540, magicAt: 4, magics: ['n+2\0', 'ni2\0'] },
] as const;

function volumeExtension(filename: string): VolumeExtension | undefined {
  const lower = filename.toLowerCase();
  // Longest first, so that `.nii.gz` is not taken for something shorter.
  return [...VOLUME_EXTENSIONS]
    .sort((a, b) => b.length - a.length)
    .find((ext) => lower.endsWith(ext));
}

function isGzip(head: Buffer): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** Why these bytes do not start a NIfTI-1/-2 header (either byte order), or undefined. */
function niftiProblem(header: Buffer): string | undefined {
  if (header.length < 4) {
    return 'it is too short to hold a NIfTI header';
  }
  const le = header.readInt32LE(0);
  const be = header.readInt32BE(0);
  const format = NIFTI.find((f) => f.sizeofHdr === le || f.sizeofHdr === be);
  if (!format) {
    return 'its sizeof_hdr is neither 348 (NIfTI-1) nor 540 (NIfTI-2)';
  }
  if (header.length < format.magicAt + 4) {
    return `its NIfTI-${format.version} header is cut short (${header.length} bytes)`;
  }
  const magic = header.toString('latin1', format.magicAt, format.magicAt + 4);
  if (!(format.magics as readonly string[]).includes(magic)) {
    return `it lacks the NIfTI-${format.version} magic "${format.magics[0].slice(0, 3)}" at byte ${format.magicAt}`;
  }
  return undefined;
}

/**
 * Whether the first bytes of an upload are what its extension says: a NIfTI-1/-2 header for
 * `.nii`, the same inside gzip for `.nii.gz` (a truncated gzip stream is fine: only the start
 * is inflated), the `NRRD000x` magic for `.nrrd`/`.nhdr`. Returns a message, or undefined.
 */
export function checkVolumeHeader(filename: string, head: Buffer): string | undefined {
  const shown = JSON.stringify(filename);
  const ext = volumeExtension(filename);
  switch (ext) {
    case undefined:
      return `${shown} is not a volume file (${VOLUME_EXTENSIONS.join(', ')})`;
    case '.nrrd':
    case '.nhdr':
      return /^NRRD000[1-9]/.test(head.toString('latin1', 0, 8))
        ? undefined
        : `${shown} is not an NRRD file: it does not start with NRRD000x`;
    case '.nii': {
      if (isGzip(head)) {
        return `${shown} is gzip-compressed: name it .nii.gz`;
      }
      const problem = niftiProblem(head);
      return problem && `${shown} is not a NIfTI file: ${problem}`;
    }
    case '.nii.gz': {
      if (!isGzip(head)) {
        return `${shown} is not gzip-compressed, as a .nii.gz file must be`;
      }
      let header: Buffer;
      try {
        header = gunzipSync(head, { finishFlush: constants.Z_SYNC_FLUSH });
      } catch {
        return `${shown} is not a valid gzip file`;
      }
      const problem = niftiProblem(header);
      return problem && `${shown} does not hold a NIfTI image: ${problem}`;
    }
  }
}
