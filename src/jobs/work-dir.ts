import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import type { BlobStorage, StoredBlob } from '../storage/blob-storage';
import type { Job } from './job.entity';

/**
 * A job's work directory on the worker: `inputs.json`, `inputs/<input>/<file>` copied from
 * storage, an empty `outputs/`, and the log. Fresh for every attempt, removed afterwards.
 */
export class WorkDir {
  constructor(readonly root: string) {}

  get outputs(): string {
    return join(this.root, 'outputs');
  }

  get logFile(): string {
    return join(this.root, 'job.log');
  }

  async prepare(job: Job, storage: BlobStorage): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
    await mkdir(join(this.root, 'inputs'), { recursive: true });
    await mkdir(this.outputs, { recursive: true });
    for (const file of job.inputFiles) {
      const target = join(this.root, file.path);
      await mkdir(dirname(target), { recursive: true });
      await pipeline(storage.read(file.key), createWriteStream(target));
    }
    await writeFile(join(this.root, 'inputs.json'), JSON.stringify(job.inputs, null, 2));
  }

  /** Packs `outputs/` as a tar.gz straight into storage (streamed, size-capped). */
  async packOutputs(storage: BlobStorage, key: string, maxBytes: number): Promise<StoredBlob> {
    const entries = await readdir(this.outputs);
    const archive = tar.c(
      { gzip: true, cwd: this.outputs, portable: true },
      entries.length ? entries : ['.'],
    );
    return storage.write(key, Readable.from(archive), { maxBytes });
  }

  async remove(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }
}
