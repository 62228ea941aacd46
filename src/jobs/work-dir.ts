import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
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

  private get pidFile(): string {
    return join(this.root, '.labgate-pids');
  }

  /** Remembers who runs the program (worker pid, program's process group) for orphan cleanup. */
  async recordProgram(programPid: number): Promise<void> {
    await writeFile(this.pidFile, `${process.pid} ${programPid}\n`);
  }

  /**
   * A worker killed with SIGKILL cannot stop its program (it runs in a process group of its
   * own): whoever prepares the same work dir next, or a worker booting on this machine, ends it.
   * Only when the worker that started it is gone: a live worker's program is left alone.
   */
  async killOrphan(): Promise<boolean> {
    let content: string;
    try {
      content = await readFile(this.pidFile, 'utf8');
    } catch {
      return false;
    }
    const [workerPid, programPid] = content.trim().split(' ').map(Number);
    if (!programPid || (workerPid !== process.pid && isAlive(workerPid))) {
      return false;
    }
    try {
      process.kill(-programPid, 'SIGKILL');
      return true;
    } catch {
      return false; // already gone
    }
  }

  async prepare(job: Job, storage: BlobStorage): Promise<void> {
    await this.killOrphan();
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

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** At worker boot: end the programs that dead workers on this machine left running. */
export async function killOrphans(workRoot: string): Promise<number> {
  let killed = 0;
  for (const entry of await readdir(workRoot).catch(() => [] as string[])) {
    if (await new WorkDir(join(workRoot, entry)).killOrphan()) {
      killed++;
    }
  }
  return killed;
}

/**
 * Copies a running job's log to storage now and then (at most once a second), so that API
 * processes on other machines can serve it while the job runs.
 */
export class LogFlusher {
  private dirty = false;
  private busy = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly storage: BlobStorage,
    private readonly key: string,
    private readonly file: string,
    everyMs = 1000,
  ) {
    this.timer = setInterval(() => void this.flush(), everyMs);
    this.timer.unref();
  }

  changed(): void {
    this.dirty = true;
  }

  private async flush(): Promise<void> {
    if (!this.dirty || this.busy) {
      return;
    }
    this.dirty = false;
    this.busy = true;
    try {
      await this.storage.write(this.key, createReadStream(this.file));
    } catch {
      this.dirty = true; // next tick tries again; the final copy is made when the job ends
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
