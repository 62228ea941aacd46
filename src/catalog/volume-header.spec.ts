import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { checkVolumeHeader, VOLUME_HEADER_BYTES } from './input-validation';

/** A NIfTI-1 header (348 bytes + 4 of extension flags) in either byte order. */
function nifti1(options: { bigEndian?: boolean; magic?: string } = {}): Buffer {
  const header = Buffer.alloc(352);
  if (options.bigEndian) {
    header.writeInt32BE(348, 0);
  } else {
    header.writeInt32LE(348, 0);
  }
  header.write(options.magic ?? 'n+1\0', 344, 'latin1');
  return header;
}

function nifti2(options: { bigEndian?: boolean; magic?: string } = {}): Buffer {
  const header = Buffer.alloc(544);
  if (options.bigEndian) {
    header.writeInt32BE(540, 0);
  } else {
    header.writeInt32LE(540, 0);
  }
  header.write(options.magic ?? 'n+2\0\r\n\x1a\n', 4, 'latin1');
  return header;
}

/** The start of a large .nii.gz, as an upload's first bytes: the gzip stream is cut off. */
function gzippedHead(header: Buffer, voxels = 1024 * 1024): Buffer {
  return gzipSync(Buffer.concat([header, randomBytes(voxels)])).subarray(0, VOLUME_HEADER_BYTES);
}

describe('checkVolumeHeader', () => {
  it.each([
    ['brain.nii', nifti1()],
    ['brain.nii', nifti1({ bigEndian: true })],
    ['pair.nii', nifti1({ magic: 'ni1\0' })],
    ['brain.nii', nifti2()],
    ['brain.nii', nifti2({ bigEndian: true })],
    ['BRAIN.NII', nifti1()],
    ['brain.nii.gz', gzippedHead(nifti1())],
    ['brain.nii.gz', gzippedHead(nifti2({ bigEndian: true }))],
    ['brain.nii.gz', gzipSync(nifti1())],
    ['Brain.Nii.Gz', gzippedHead(nifti1())],
    ['head.nrrd', Buffer.from('NRRD0004\n# Complete NRRD file format specification at:\n')],
    ['head.nhdr', Buffer.from('NRRD0005\ntype: short\ndata file: head.raw.gz\n')],
  ])('accepts %s (%#)', (name, head) => {
    expect(checkVolumeHeader(name, head)).toBeUndefined();
  });

  it.each([
    [
      'brain.nii',
      Buffer.from('not an image at all, just text'),
      'is not a NIfTI file: its sizeof_hdr is neither 348 (NIfTI-1) nor 540 (NIfTI-2)',
    ],
    ['brain.nii', nifti1({ magic: 'abc\0' }), 'lacks the NIfTI-1 magic "n+1" at byte 344'],
    ['brain.nii', nifti2({ magic: 'n+1\0' }), 'lacks the NIfTI-2 magic "n+2" at byte 4'],
    ['brain.nii', nifti1().subarray(0, 200), 'its NIfTI-1 header is cut short (200 bytes)'],
    ['brain.nii', Buffer.from([1, 2]), 'too short to hold a NIfTI header'],
    ['brain.nii', Buffer.alloc(0), 'too short to hold a NIfTI header'],
    ['brain.nii', gzipSync(nifti1()), '"brain.nii" is gzip-compressed: name it .nii.gz'],
    ['brain.nii.gz', nifti1(), '"brain.nii.gz" is not gzip-compressed, as a .nii.gz file must be'],
    [
      'brain.nii.gz',
      gzippedHead(Buffer.from('plain text in a gzip')),
      'does not hold a NIfTI image: its sizeof_hdr',
    ],
    [
      'brain.nii.gz',
      gzippedHead(nifti1({ magic: 'xyz\0' })),
      'does not hold a NIfTI image: it lacks the NIfTI-1 magic',
    ],
    ['brain.nii.gz', gzipSync(nifti1()).subarray(0, 12), 'does not hold a NIfTI image'],
    [
      'brain.nii.gz',
      Buffer.from([0x1f, 0x8b, 0x09, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]),
      '"brain.nii.gz" is not a valid gzip file',
    ],
    [
      'head.nrrd',
      Buffer.from('NRRX0004\n'),
      '"head.nrrd" is not an NRRD file: it does not start with NRRD000x',
    ],
    ['head.nhdr', nifti1(), 'is not an NRRD file'],
    ['scan.mha', nifti1(), '"scan.mha" is not a volume file (.nii, .nii.gz, .nrrd, .nhdr)'],
  ])('refuses %s (%#)', (name, head, message) => {
    expect(checkVolumeHeader(name, head)).toContain(message);
  });
});
