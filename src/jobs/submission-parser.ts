import { HttpStatus } from '@nestjs/common';
import { basename } from 'node:path';
import { PassThrough, Readable, Transform, type Writable } from 'node:stream';
import busboy from 'busboy';
import type { Request } from 'express';
import { checkFileName, checkVolumeHeader } from '../catalog/input-validation';
import type { InputSpec, ServiceManifest } from '../catalog/manifest';
import { FieldError, ProblemException, validationProblem } from '../common/problem';
import { BlobStorage, BlobTooLargeError, STREAM_BUFFER } from '../storage/blob-storage';
import type { StoredInputFile } from './job.entity';
import { importPayload } from './payload-import';
import type { PayloadLimits } from './payload/payload-unpacker';

/** Enough of a file's start to check a medical image header (a gzip member holds more). */
const HEAD_BYTES = 64 * 1024;

export interface ParsedSubmission {
  manifest: ServiceManifest;
  fields: Record<string, unknown>;
  files: StoredInputFile[];
}

export interface SubmissionContext {
  jobId: string;
  storage: BlobStorage;
  /** Where a `payload` archive is unpacked before its files go to storage. */
  scratchDir: string;
  payloadLimits: PayloadLimits;
  /** Resolves the service (404/409 problems for unknown, not entitled or disabled ones). */
  resolveService: (key: string) => Promise<ServiceManifest>;
}

/** A file name safe to put on disk: its last segment, plain characters only. */
export function safeFilename(name: string): string {
  const cleaned = basename(name.replace(/\\/g, '/'))
    .replace(/[^\w.-]+/g, '_')
    .replace(/^\.+/, '')
    .slice(0, 200);
  return cleaned || 'file';
}

/** Throws away the rest of a file part (unpiped first: a pipe would pause it again). */
function drain(stream: Readable): void {
  stream.unpipe();
  stream.resume();
}

/**
 * `part.pipe(target)`, and a part cut short (busboy destroys it with the form's error) destroys
 * the target too, so that whatever reads the target fails instead of waiting forever.
 */
function pipePart<T extends Writable>(part: Readable, target: T): T {
  if (part.destroyed) {
    // Cut short before its service was resolved: nothing more will come.
    target.destroy(part.errored ?? new Error('the form ended in the middle of this part'));
    return target;
  }
  part.on('error', (err) => target.destroy(err));
  return part.pipe(target);
}

/** Keeps the first bytes of a stream while passing everything through. */
class HeadCapture extends Transform {
  head = Buffer.alloc(0);

  constructor() {
    super(STREAM_BUFFER);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: () => void) {
    if (this.head.length < HEAD_BYTES) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, HEAD_BYTES - this.head.length)]);
    }
    this.push(chunk);
    done();
  }
}

/**
 * Reads a multipart submission as it arrives: the `service` field first, then each file is
 * checked (name, size) and streamed straight to storage, never held in memory. On any
 * problem everything stored for the job is removed before the error goes out.
 */
export async function parseMultipartSubmission(
  req: Request,
  ctx: SubmissionContext,
  limits: { maxFields: number; maxFiles: number },
): Promise<ParsedSubmission> {
  const prefix = `jobs/${ctx.jobId}/`;
  try {
    return await new Promise<ParsedSubmission>((resolve, reject) => {
      let parser: busboy.Busboy;
      try {
        parser = busboy({
          headers: req.headers,
          limits: { fields: limits.maxFields, files: limits.maxFiles, fieldSize: 1024 * 1024 },
          highWaterMark: STREAM_BUFFER.highWaterMark,
          fileHwm: STREAM_BUFFER.highWaterMark,
        });
      } catch (err) {
        reject(
          new ProblemException(
            HttpStatus.BAD_REQUEST,
            `Not a multipart form: ${(err as Error).message}.`,
          ),
        );
        return;
      }
      const fields: Record<string, unknown> = {};
      const files: StoredInputFile[] = [];
      const errors: FieldError[] = [];
      const pending: Promise<void>[] = [];
      let servicePromise: Promise<ServiceManifest> | undefined;
      let failure: Error | undefined;
      const fail = (err: unknown) => {
        failure ??= err instanceof Error ? err : new Error(String(err));
      };

      parser.on('field', (name, value) => {
        if (name === 'service') {
          servicePromise ??= ctx.resolveService(value);
          servicePromise.catch(fail);
        } else {
          fields[name] = value;
        }
      });

      parser.on('file', (name, stream, info) => {
        // A form cut short ends with busboy destroying the open part with the form's error,
        // which the parser's own 'error' reports: unheard here it would be an uncaught
        // 'error' event and end the process.
        stream.on('error', () => {});
        if (!servicePromise) {
          drain(stream);
          fail(
            validationProblem([
              { field: name, message: 'the service field must come before any file in the form' },
            ]),
          );
          return;
        }
        const work = servicePromise.then(async (manifest) => {
          if (name === 'payload') {
            // Through a pass-through: a refused archive destroys it, not busboy's own stream.
            const imported = await importPayload({
              manifest,
              source: pipePart(stream, new PassThrough()),
              jobId: ctx.jobId,
              scratchDir: ctx.scratchDir,
              limits: ctx.payloadLimits,
              storage: ctx.storage,
            });
            Object.assign(fields, imported.fields);
            files.push(...imported.files);
            return;
          }
          const spec = manifest.inputs.find((i) => i.name === name);
          if (!spec || (spec.type !== 'file' && spec.type !== 'volume')) {
            drain(stream);
            errors.push({
              field: name,
              message: `${name} is not a file input of service ${manifest.key}`,
            });
            return;
          }
          const filename = safeFilename(info.filename ?? name);
          const nameProblem = checkFileName(spec, filename);
          if (nameProblem) {
            drain(stream);
            errors.push({ field: name, message: nameProblem });
            return;
          }
          if (files.some((f) => f.input === name)) {
            drain(stream);
            errors.push({ field: name, message: `${name} was sent more than once` });
            return;
          }
          files.push(await storeFile(ctx, spec, filename, stream));
        });
        // Whatever went wrong, the rest of this part is drained so that the form goes on.
        pending.push(
          work.catch((err: unknown) => {
            drain(stream);
            fail(err);
          }),
        );
      });

      parser.on('filesLimit', () =>
        fail(validationProblem([{ field: 'form', message: `at most ${limits.maxFiles} files` }])),
      );
      parser.on('fieldsLimit', () =>
        fail(validationProblem([{ field: 'form', message: `at most ${limits.maxFields} fields` }])),
      );
      parser.on('error', (err: Error) =>
        reject(
          new ProblemException(
            HttpStatus.BAD_REQUEST,
            `The form could not be read: ${err.message}.`,
          ),
        ),
      );
      parser.on('close', () => {
        // Every outcome settles the request, a service that turns out unusable only now
        // included (its check may still be on its way when the form ends).
        Promise.all(pending)
          .then(async () => {
            if (failure) {
              reject(failure);
              return;
            }
            if (!servicePromise) {
              reject(validationProblem([{ field: 'service', message: 'service is required' }]));
              return;
            }
            const manifest = await servicePromise;
            if (errors.length > 0) {
              reject(validationProblem(errors));
              return;
            }
            resolve({ manifest, fields, files });
          })
          .catch(reject);
      });
      req.on('aborted', () => {
        fail(new ProblemException(HttpStatus.BAD_REQUEST, 'The upload was aborted.'));
        // The body will never end: stop the parser, so that the part being stored fails (and
        // its temp file goes) rather than waiting forever for the rest.
        parser.destroy(new Error('the upload was aborted'));
      });
      req.pipe(parser);
    });
  } catch (err) {
    await ctx.storage.delete(prefix);
    throw err;
  }
}

async function storeFile(
  ctx: SubmissionContext,
  spec: InputSpec,
  filename: string,
  stream: Readable,
): Promise<StoredInputFile> {
  const head = new HeadCapture();
  const key = `jobs/${ctx.jobId}/inputs/${spec.name}/${filename}`;
  const source = pipePart(stream, head);
  let stored;
  try {
    stored = await ctx.storage.write(key, source, { maxBytes: spec.maxBytes });
  } catch (err) {
    drain(stream);
    if (err instanceof BlobTooLargeError) {
      throw new ProblemException(
        HttpStatus.PAYLOAD_TOO_LARGE,
        `${spec.name}: the file is larger than the ${spec.maxBytes} bytes this input accepts.`,
        { errors: [{ field: spec.name, message: `at most ${spec.maxBytes} bytes` }] },
      );
    }
    throw err;
  }
  if (spec.type === 'volume') {
    const problem = checkVolumeHeader(filename, head.head);
    if (problem) {
      throw validationProblem([{ field: spec.name, message: problem }]);
    }
  }
  return {
    input: spec.name,
    filename,
    path: `inputs/${spec.name}/${filename}`,
    key,
    size: stored.size,
    sha256: stored.sha256,
  };
}
