import { HttpStatus } from '@nestjs/common';
import type { Readable } from 'node:stream';
import busboy from 'busboy';
import type { Request } from 'express';
import { unacceptable } from '../common/body-errors';
import { ProblemException, validationProblem } from '../common/problem';
import { BlobStorage, BlobTooLargeError, StoredBlob } from '../storage/blob-storage';

const METRICS_MAX_BYTES = 1024 * 1024;
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

export interface Completion {
  metrics?: Record<string, unknown>;
  result?: StoredBlob;
  log?: StoredBlob;
}

async function collect(stream: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      stream.resume();
      throw validationProblem([
        { field: 'metrics', message: `metrics must be at most ${limit} bytes` },
      ]);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function parseMetrics(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw validationProblem([
      { field: 'metrics', message: `metrics is not valid JSON: ${(err as Error).message}` },
    ]);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw validationProblem([{ field: 'metrics', message: 'metrics must be a JSON object' }]);
  }
  // The screening JSON bodies get (refuseUnstorableInput): no NUL or unpaired surrogate, no
  // absurd nesting; PostgreSQL would refuse the first two in the job's metrics.
  const problem = unacceptable(value);
  if (problem) {
    throw validationProblem([{ field: 'metrics', message: `metrics ${problem}` }]);
  }
  return value as Record<string, unknown>;
}

/**
 * Reads an agent's completion (multipart: `metrics`, `log`, `result`): files streamed to the
 * job's storage keys with a size cap, metrics parsed. On any refusal the files written so
 * far are removed, so a refused completion leaves nothing behind.
 */
export async function readCompletion(
  req: Request,
  storage: BlobStorage,
  jobId: string,
  maxBytes: number,
): Promise<Completion> {
  if (!req.is('multipart/form-data')) {
    throw new ProblemException(
      HttpStatus.UNSUPPORTED_MEDIA_TYPE,
      'Send the completion as multipart/form-data with the parts metrics, log and result.',
    );
  }
  const written: string[] = [];
  const completion: Completion = {};
  try {
    await new Promise<void>((resolve, reject) => {
      let parser: busboy.Busboy;
      try {
        parser = busboy({
          headers: req.headers,
          limits: { files: 3, fields: 3, fieldSize: METRICS_MAX_BYTES, parts: 6 },
        });
      } catch (err) {
        reject(validationProblem([{ field: 'body', message: (err as Error).message }]));
        return;
      }
      const pending: Array<Promise<unknown>> = [];
      let failed = false;
      const fail = (err: unknown) => {
        if (failed) {
          return;
        }
        failed = true;
        req.unpipe(parser);
        req.resume();
        // Parts still being stored would wait forever for the rest of the body: destroying the
        // parser fails them, and their temp files go.
        parser.destroy();
        reject(err instanceof Error ? err : new Error(String(err)));
      };
      parser.on('field', (name, value, info) => {
        if (name !== 'metrics') {
          fail(
            validationProblem([
              { field: name, message: `unknown part "${name}"; expected metrics, log or result` },
            ]),
          );
          return;
        }
        if (info.valueTruncated) {
          fail(
            validationProblem([
              { field: 'metrics', message: `metrics must be at most ${METRICS_MAX_BYTES} bytes` },
            ]),
          );
          return;
        }
        try {
          completion.metrics = parseMetrics(value);
        } catch (err) {
          fail(err);
        }
      });
      parser.on('file', (name, stream) => {
        // A body cut short ends with busboy destroying the open part with the form's error,
        // which the parser's own 'error' reports: unheard here it would end the process.
        stream.on('error', () => {});
        if (name === 'metrics') {
          pending.push(
            collect(stream, METRICS_MAX_BYTES)
              .then((buf) => {
                completion.metrics = parseMetrics(buf.toString('utf8'));
              })
              .catch(fail),
          );
          return;
        }
        if (name !== 'result' && name !== 'log') {
          stream.resume();
          fail(
            validationProblem([
              { field: name, message: `unknown part "${name}"; expected metrics, log or result` },
            ]),
          );
          return;
        }
        const key = `jobs/${jobId}/${name === 'result' ? 'result.tar.gz' : 'log.txt'}`;
        written.push(key);
        pending.push(
          storage
            .write(key, stream, { maxBytes })
            .then((blob) => {
              completion[name] = blob;
            })
            .catch((err: unknown) => {
              stream.resume(); // the rest of the part is read and dropped
              fail(err);
            }),
        );
      });
      parser.on('error', (err: Error) =>
        fail(
          validationProblem([
            { field: 'body', message: `malformed multipart body: ${err.message}` },
          ]),
        ),
      );
      parser.on('close', () => {
        void Promise.all(pending).then(() => {
          if (!failed) {
            resolve();
          }
        });
      });
      req.on('aborted', () => fail(new Error('the request was aborted')));
      req.pipe(parser);
    });
    if (completion.result && !(await startsWithGzip(storage, completion.result.key))) {
      throw validationProblem([
        { field: 'result', message: 'result must be a tar.gz (gzip) file' },
      ]);
    }
    return completion;
  } catch (err) {
    await Promise.all(written.map((key) => storage.delete(key).catch(() => {})));
    if (err instanceof BlobTooLargeError) {
      throw new ProblemException(
        HttpStatus.PAYLOAD_TOO_LARGE,
        `A result or log part exceeds ${err.limit} bytes, the service's output cap.`,
      );
    }
    throw err;
  }
}

async function startsWithGzip(storage: BlobStorage, key: string): Promise<boolean> {
  const head: Buffer[] = [];
  for await (const chunk of storage.read(key, { start: 0, end: 1 })) {
    head.push(chunk as Buffer);
  }
  return Buffer.concat(head).subarray(0, 2).equals(GZIP_MAGIC);
}
