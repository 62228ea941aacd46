import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { checkFileName, checkVolumeHeader } from '../catalog/input-validation';
import type { ServiceManifest } from '../catalog/manifest';
import { FieldError, ProblemException, validationProblem } from '../common/problem';
import type { BlobStorage } from '../storage/blob-storage';
import type { StoredInputFile } from './job.entity';
import { PayloadError } from './payload/payload-error';
import { PayloadLimits, unpackPayload } from './payload/payload-unpacker';
import type { Readable } from 'node:stream';

const HEAD_BYTES = 64 * 1024;

export interface ImportedPayload {
  fields: Record<string, unknown>;
  files: StoredInputFile[];
}

async function head(path: string): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, HEAD_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * A TOMAAT-style `payload` part: a tar.gz with `main.json` (input values; a file input's value
 * names a file of the archive) and the files. Unpacked safely to a scratch dir, each file
 * checked like an uploaded one and moved to storage; the scratch dir never outlives the call.
 */
export async function importPayload(options: {
  manifest: ServiceManifest;
  source: Readable;
  jobId: string;
  scratchDir: string;
  limits: PayloadLimits;
  storage: BlobStorage;
}): Promise<ImportedPayload> {
  const { manifest, jobId, storage } = options;
  const dir = join(options.scratchDir, `payload-${jobId}`);
  try {
    let unpacked;
    try {
      unpacked = await unpackPayload(options.source, dir, options.limits);
    } catch (err) {
      if (err instanceof PayloadError) {
        throw new ProblemException(err.status, err.message, {
          type: 'urn:labgate:problem:payload',
          errors: [{ field: 'payload', message: err.message }],
        });
      }
      throw err;
    }
    const values = unpacked.mainJson as Record<string, unknown>;
    const inArchive = new Map(unpacked.files.map((f) => [f.path.replace(/^\.\//, ''), f]));
    const fields: Record<string, unknown> = {};
    const files: StoredInputFile[] = [];
    const errors: FieldError[] = [];
    for (const [name, value] of Object.entries(values)) {
      const spec = manifest.inputs.find((i) => i.name === name);
      if (!spec || (spec.type !== 'file' && spec.type !== 'volume')) {
        fields[name] = value; // validated with the other values
        continue;
      }
      const entry =
        typeof value === 'string' ? inArchive.get(value.replace(/^\.\//, '')) : undefined;
      if (!entry) {
        errors.push({ field: name, message: `${name} must name a file in the payload archive` });
        continue;
      }
      const filename = entry.path.split('/').pop() ?? name;
      const problem =
        checkFileName(spec, filename) ??
        (spec.maxBytes !== undefined && entry.size > spec.maxBytes
          ? `${name} is larger than ${spec.maxBytes} bytes`
          : undefined) ??
        (spec.type === 'volume'
          ? checkVolumeHeader(filename, await head(join(dir, entry.path)))
          : undefined);
      if (problem) {
        errors.push({ field: name, message: problem });
        continue;
      }
      const key = `jobs/${jobId}/inputs/${name}/${filename}`;
      const stored = await storage.write(key, createReadStream(join(dir, entry.path)));
      files.push({
        input: name,
        filename,
        path: `inputs/${name}/${filename}`,
        key,
        size: stored.size,
        sha256: stored.sha256,
      });
    }
    if (errors.length > 0) {
      throw validationProblem(errors);
    }
    return { fields, files };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
