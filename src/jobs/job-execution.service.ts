import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Injectable, Logger } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import type { Job as BullJob } from 'bull';
import { CatalogService } from '../catalog/catalog.service';
import { validateMetrics } from '../catalog/input-validation';
import type { ServiceManifest } from '../catalog/manifest';
import { AppConfig } from '../config';
import type { JobName, JobOf } from '../queue/queue.constants';
import { BlobStorage, BlobTooLargeError } from '../storage/blob-storage';
import { JobEventsBus } from './job-events.bus';
import { isFinal, JobState } from './job-state';
import { Job } from './job.entity';
import type { JobPatch } from './job.repository';
import { runLocal } from './runner/local-runner';
import { LogFlusher, WorkDir } from './work-dir';

export const WORKER_ID = `worker:${hostname()}:${process.pid}`;
const PROGRESS_EVERY_MS = 500;

/** Runs one labgate job on this worker with the local runner, start to final state. */
@Injectable()
export class JobExecutionService {
  private readonly logger = new Logger(JobExecutionService.name);

  constructor(
    private readonly em: EntityManager,
    private readonly config: AppConfig,
    private readonly catalog: CatalogService,
    private readonly storage: BlobStorage,
    private readonly bus: JobEventsBus,
  ) {}

  private get jobs() {
    return this.em.fork().getRepository(Job);
  }

  private async move(
    id: string,
    to: JobState,
    reason?: string,
    patch: JobPatch = {},
    from?: JobState[],
  ) {
    const moved = await this.jobs.transition(id, { to, reason, actor: WORKER_ID, patch, from });
    if (moved) {
      await this.bus.publish({
        type: 'state',
        jobId: id,
        state: to,
        reason,
        at: new Date().toISOString(),
      });
    }
    return moved;
  }

  async handle(bullJob: BullJob<JobOf<JobName.RunJob>>): Promise<void> {
    const { jobId } = bullJob.data;
    const job = await this.em.fork().findOne(Job, jobId);
    if (!job || isFinal(job.state)) {
      return; // cancelled or deleted meanwhile: nothing to do
    }
    const manifest = this.catalog.manifest(job.service);
    if (!manifest) {
      await this.move(jobId, JobState.Failed, `service ${job.service} no longer exists`, {
        finishedAt: new Date(),
      });
      return;
    }
    if (job.state !== JobState.Queued) {
      // Bull gave us a job another worker had started: that worker was lost.
      await this.move(
        jobId,
        JobState.Queued,
        `worker lost during attempt ${job.attempts}; running it again`,
      );
    }
    if (
      !(await this.move(jobId, JobState.Assigned, undefined, { worker: WORKER_ID }, [
        JobState.Queued,
      ]))
    ) {
      return;
    }
    const started = await this.move(jobId, JobState.Running, undefined, {
      attempts: job.attempts + 1,
      startedAt: new Date(),
      progress: 0,
    });
    if (!started) {
      return;
    }
    const lastAttempt = bullJob.attemptsMade + 1 >= (bullJob.opts.attempts ?? 1);
    const workDir = new WorkDir(join(this.config.varDir, 'work', jobId));
    try {
      await this.execute(started.job, manifest, workDir, lastAttempt);
    } catch (err) {
      const reason = `internal error: ${(err as Error).message}`;
      this.logger.error(`job ${jobId}: ${reason}`);
      if (lastAttempt) {
        await this.move(jobId, JobState.Failed, reason, { finishedAt: new Date() }, [
          JobState.Running,
        ]);
        return;
      }
      await this.move(jobId, JobState.Queued, `${reason}; retrying`, {}, [JobState.Running]);
      throw err; // Bull retries with the service's backoff
    } finally {
      await workDir.remove();
    }
  }

  private async execute(
    job: Job,
    manifest: ServiceManifest,
    workDir: WorkDir,
    lastAttempt: boolean,
  ) {
    await workDir.prepare(job, this.storage);
    this.logger.debug(`job ${job.id}: work dir ready, running ${manifest.run.command[0]}`);
    const abort = new AbortController();
    const unsubscribe = await this.bus.subscribe(job.id, (update) => {
      if (update.type === 'cancel') {
        abort.abort();
      }
    });
    // A cancel may have landed before we subscribed: PostgreSQL says.
    const now = await this.em.fork().findOne(Job, job.id, { fields: ['state'] });
    if (now?.state !== JobState.Running) {
      abort.abort();
    }
    let lastProgressAt = 0;
    let logOffset = 0;
    const flusher = new LogFlusher(this.storage, `jobs/${job.id}/log.txt`, workDir.logFile);
    const result = await runLocal({
      run: manifest.run,
      serviceDir: manifest.dir,
      workDir: workDir.root,
      logFile: workDir.logFile,
      signal: abort.signal,
      onSpawn: (pid) => void workDir.recordProgram(pid).catch(() => {}),
      onLog: (chunk) => {
        void this.bus.publish({ type: 'log', jobId: job.id, offset: logOffset, chunk });
        logOffset += Buffer.byteLength(chunk);
        flusher.changed();
      },
      onProgress: (progress, message) => {
        if (Date.now() - lastProgressAt < PROGRESS_EVERY_MS && progress < 100) {
          return;
        }
        lastProgressAt = Date.now();
        void this.reportProgress(job.id, progress, message);
      },
    }).finally(() => {
      unsubscribe();
      flusher.stop();
    });
    this.logger.debug(
      `job ${job.id}: ${result.outcome} (${result.reason ?? 'ok'}) in ${result.durationMs} ms`,
    );

    await this.storage
      .write(`jobs/${job.id}/log.txt`, createReadStream(workDir.logFile))
      .catch((err: Error) => this.logger.warn(`job ${job.id}: log not kept: ${err.message}`));

    if (result.outcome === 'cancelled') {
      return; // the API already moved it to cancelled
    }
    if (result.outcome !== 'exited' || result.exitCode !== 0) {
      const reason = result.reason ?? `ended with ${result.outcome}`;
      if (lastAttempt) {
        await this.move(job.id, JobState.Failed, reason, { finishedAt: new Date() }, [
          JobState.Running,
        ]);
        return;
      }
      await this.move(job.id, JobState.Queued, `${reason}; retrying`, {}, [JobState.Running]);
      throw new Error(reason);
    }
    const failure = await this.finish(job, manifest, workDir);
    if (failure) {
      await this.move(job.id, JobState.Failed, failure, { finishedAt: new Date() }, [
        JobState.Running,
      ]);
    }
  }

  /** Metrics checked, outputs packed, job succeeded; or the reason it cannot succeed. */
  private async finish(
    job: Job,
    manifest: ServiceManifest,
    workDir: WorkDir,
  ): Promise<string | undefined> {
    let metrics: Record<string, unknown> | undefined;
    try {
      metrics = JSON.parse(await readFile(join(workDir.outputs, 'metrics.json'), 'utf8')) as Record<
        string,
        unknown
      >;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        return `outputs/metrics.json is not valid JSON: ${(err as Error).message}`;
      }
    }
    if (metrics !== undefined || manifest.resultSchema) {
      const problems = validateMetrics(manifest, metrics ?? {});
      if (problems.length > 0) {
        return `metrics do not match the result schema: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}`;
      }
    }
    let stored;
    try {
      stored = await workDir.packOutputs(
        this.storage,
        `jobs/${job.id}/result.tar.gz`,
        manifest.run.maxOutputBytes,
      );
    } catch (err) {
      if (err instanceof BlobTooLargeError) {
        return `the outputs exceed ${manifest.run.maxOutputBytes} bytes packed`;
      }
      throw err;
    }
    await this.move(
      job.id,
      JobState.Succeeded,
      undefined,
      {
        metrics,
        resultSize: stored.size,
        resultSha256: stored.sha256,
        progress: 100,
        finishedAt: new Date(),
      },
      [JobState.Running],
    );
    return undefined;
  }

  /** Marks a job failed when Bull will not run it again (unless it is already final). */
  async giveUp(jobId: string, why: string): Promise<void> {
    const reason = /stalled/i.test(why)
      ? 'its worker was lost more often than the retry policy allows'
      : why;
    await this.move(jobId, JobState.Failed, reason, { finishedAt: new Date() }, [
      JobState.Queued,
      JobState.Assigned,
      JobState.Running,
    ]).catch((err: Error) =>
      this.logger.error(`job ${jobId}: could not mark failed: ${err.message}`),
    );
  }

  private async reportProgress(jobId: string, progress: number, message?: string) {
    try {
      await this.em
        .fork()
        .nativeUpdate(
          Job,
          { id: jobId, state: JobState.Running },
          { progress, progressMessage: message },
        );
      await this.bus.publish({
        type: 'progress',
        jobId,
        progress,
        message,
        at: new Date().toISOString(),
      });
    } catch (err) {
      this.logger.warn(`job ${jobId}: progress not saved: ${(err as Error).message}`);
    }
  }
}
