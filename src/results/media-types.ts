/**
 * Media types of result files by extension. Outputs are what services write (reports, plots,
 * tables, models, volumes); anything unknown is served as bytes.
 */
const BY_EXTENSION: Record<string, string> = {
  '.nii.gz': 'application/gzip',
  '.tar.gz': 'application/gzip',
  '.json': 'application/json',
  '.txt': 'text/plain',
  '.log': 'text/plain',
  '.md': 'text/markdown',
  '.csv': 'text/csv',
  '.tsv': 'text/tab-separated-values',
  '.html': 'text/html',
  '.htm': 'text/html',
  '.xml': 'application/xml',
  '.yaml': 'application/yaml',
  '.yml': 'application/yaml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.webp': 'image/webp',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
  '.tar': 'application/x-tar',
  '.mp4': 'video/mp4',
  '.avi': 'video/x-msvideo',
  '.wav': 'audio/wav',
  '.nii': 'application/octet-stream',
  '.npy': 'application/octet-stream',
  // OpenSim: marker trajectories, motions and models are text.
  '.trc': 'text/plain',
  '.mot': 'text/plain',
  '.sto': 'text/plain',
  '.osim': 'application/xml',
};

const EXTENSIONS = Object.keys(BY_EXTENSION).sort((a, b) => b.length - a.length);

export const DEFAULT_MEDIA_TYPE = 'application/octet-stream';

/** The media type of a file name, longest known extension first (`.nii.gz` before `.gz`). */
export function mediaTypeOf(name: string): string {
  const lower = name.toLowerCase();
  const ext = EXTENSIONS.find((e) => lower.endsWith(e));
  return ext ? BY_EXTENSION[ext] : DEFAULT_MEDIA_TYPE;
}
