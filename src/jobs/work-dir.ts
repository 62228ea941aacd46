import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
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

  /**
   * The directory of one placement of a job: `<workRoot>/<job id>.<assignment>`. Not the job id
   * alone: a job put back in the queue while it runs may start again on another slot of this
   * machine while its old attempt still winds down, and that attempt's cleanup must not remove
   * the new one's directory. A run of the same placement again (its worker was lost) prepares
   * the same directory, and so ends the program the lost worker left there (`killOrphan`).
   */
  static forPlacement(workRoot: string, jobId: string, assignment: number): WorkDir {
    return new WorkDir(join(workRoot, `${jobId}.${assignment}`));
  }

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

  private async recordedProgram(): Promise<{ workerPid: number; programPid: number } | undefined> {
    let content: string;
    try {
      content = await readFile(this.pidFile, 'utf8');
    } catch {
      return undefined;
    }
    const [workerPid, programPid] = content.trim().split(' ').map(Number);
    return programPid ? { workerPid, programPid } : undefined;
  }

  /**
   * A worker killed with SIGKILL cannot stop its program (it runs in a process group of its
   * own): whoever prepares the same work dir next, or a worker booting on this machine, ends it.
   * Only when the worker that started it is gone: a live worker's program is left alone.
   */
  async killOrphan(): Promise<boolean> {
    const recorded = await this.recordedProgram();
    if (!recorded || (recorded.workerPid !== process.pid && isAlive(recorded.workerPid))) {
      return false;
    }
    const { programPid } = recorded;
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

  /**
   * Left for good: the worker that ran its program is gone and so is the program (its process
   * group). Its successor may never come (the job was placed elsewhere since). A directory with
   * no program recorded is never called abandoned: it may be one being prepared, or an SSH
   * run's, which waits on its cluster for days.
   */
  async abandoned(): Promise<boolean> {
    const recorded = await this.recordedProgram();
    return (
      recorded !== undefined &&
      recorded.workerPid !== process.pid &&
      !isAlive(recorded.workerPid) &&
      !isAlive(-recorded.programPid)
    );
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

/** The last change to anything under `path` (itself included; links are not followed). */
export async function lastChange(path: string): Promise<number> {
  const info = await lstat(path);
  let latest = info.mtimeMs;
  if (info.isDirectory()) {
    for (const entry of await readdir(path)) {
      latest = Math.max(latest, await lastChange(join(path, entry)).catch(() => 0));
    }
  }
  return latest;
}

/**
 * Scratch entries (`VAR_DIR/tmp`: payloads being unpacked, agents' input archives being
 * built) in which nothing changed since `before`: a process killed while using them left them.
 * Returns the names removed.
 */
export async function removeStaleScratch(scratchRoot: string, before: number): Promise<string[]> {
  const removed: string[] = [];
  for (const entry of await readdir(scratchRoot).catch(() => [] as string[])) {
    const path = join(scratchRoot, entry);
    if ((await lastChange(path).catch(() => Infinity)) < before) {
      await rm(path, { recursive: true, force: true });
      removed.push(entry);
    }
  }
  return removed;
}

/**
 * Work directories of runs that will not come back (see `abandoned`), untouched since `before`:
 * a job placed elsewhere after its worker died leaves one. Returns the names removed.
 */
export async function removeAbandonedWorkDirs(workRoot: string, before: number): Promise<string[]> {
  const removed: string[] = [];
  for (const entry of await readdir(workRoot).catch(() => [] as string[])) {
    const dir = new WorkDir(join(workRoot, entry));
    if ((await dir.abandoned()) && (await lastChange(dir.root).catch(() => Infinity)) < before) {
      await dir.remove();
      removed.push(entry);
    }
  }
  return removed;
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
