import { randomBytes } from 'node:crypto';

export interface Part {
  name: string;
  /** A file part when set. */
  filename?: string;
  contentType?: string;
  body: string | Buffer;
  /** Extra header lines, written as they are (e.g. a huge one). */
  headers?: string[];
}

/**
 * A multipart/form-data body written by hand, so that a test can also write it wrong:
 * `truncate` cuts the body at that many bytes, `noClose` leaves out the closing boundary.
 */
export function multipart(
  parts: Part[],
  options: { boundary?: string; truncate?: number; noClose?: boolean } = {},
): { body: Buffer; contentType: string } {
  const boundary = options.boundary ?? `----labgate${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition =
      `Content-Disposition: form-data; name="${part.name}"` +
      (part.filename !== undefined ? `; filename="${part.filename}"` : '');
    const lines = [
      `--${boundary}`,
      disposition,
      ...(part.contentType ? [`Content-Type: ${part.contentType}`] : []),
      ...(part.headers ?? []),
      '',
      '',
    ];
    chunks.push(Buffer.from(lines.join('\r\n')), Buffer.from(part.body), Buffer.from('\r\n'));
  }
  if (!options.noClose) {
    chunks.push(Buffer.from(`--${boundary}--\r\n`));
  }
  let body = Buffer.concat(chunks);
  if (options.truncate !== undefined) {
    body = body.subarray(0, options.truncate);
  }
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}
