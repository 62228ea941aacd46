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
import { Device } from '../devices/device.entity';
import { whenDatabaseIsBack } from '../database/database-unavailable';
import { BlobStorage, BlobTooLargeError } from '../storage/blob-storage';
import { CancelWatch, watchCancel } from './cancel-watch';
import { JobEventsBus } from './job-events.bus';
import { JobOutcomes } from './job-outcomes.service';
import { isFinal, JobState } from './job-state';
import { Job } from './job.entity';
import { runLocal } from './runner/local-runner';
import { runOnCluster } from './runner/cluster-run';
import { cancelOnCluster } from './runner/cluster-cancel';
import type { ClusterCancel, Run } from './scheduling/device-queues';
import type { DeviceRunner } from '../devices/device-state';
import { LogFlusher, WorkDir } from './work-dir';

export const WORKER_ID = `worker:${hostname()}:${process.pid}`;
const PROGRESS_EVERY_MS = 500;

/** How an attempt ended, whichever runner ran it. */
export interface AttemptResult {
  outcome: 'exited' | 'timed-out' | 'cancelled' | 'spawn-failed' | 'failed';
  exitCode: number | null;
  reason?: string;
}

/** Runs one placed job on a local or SSH device, from `assigned` to its final state. */
@Injectable()
export class JobExecutionService {
  private readonly logger = new Logger(JobExecutionService.name);

  constructor(
    private readonly em: EntityManager,
    private readonly config: AppConfig,
    private readonly catalog: CatalogService,
    private readonly storage: BlobStorage,
    private readonly bus: JobEventsBus,
    private readonly outcomes: JobOutcomes,
  ) {}

  async handle(bullJob: BullJob<Run>, runner: DeviceRunner): Promise<void> {
    const { jobId, deviceId, assignment } = bullJob.data;
    // The usual case in one statement: still placed here, assigned → running.
    let started = (
      await this.outcomes.move(jobId, {
        to: JobState.Running,
        actor: WORKER_ID,
        patch: { startedAt: new Date(), progress: 0, worker: WORKER_ID },
        countsAttempt: true,
        from: [JobState.Assigned],
        onDevice: deviceId,
        inAssignment: assignment,
      })
    )?.job;
    started ??= await this.startOtherwise(bullJob.data);
    if (!started) {
      return;
    }
    const manifest = this.catalog.manifest(started.service);
    if (!manifest) {
      await this.outcomes.move(jobId, {
        to: JobState.Failed,
        actor: WORKER_ID,
        reason: `service ${started.service} no longer exists`,
        patch: { finishedAt: new Date() },
        from: [JobState.Running],
      });
      return;
    }
    const device =
      runner === 'ssh' ? await this.em.fork().findOneOrFail(Device, deviceId) : undefined;
    const workDir = WorkDir.forPlacement(join(this.config.varDir, 'work'), jobId, assignment);
    try {
      if (device) {
        await this.runOnCluster(started, manifest, device, workDir);
      } else {
        await this.runHere(started, manifest, workDir);
      }
    } catch (err) {
      const reason = `internal error: ${(err as Error).message}`;
      this.logger.error(`job ${jobId}: ${reason}`);
      // Recorded once PostgreSQL answers (it may be why we are here): else the job would stay
      // running with no run in Redis to take it up again.
      await this.recorded(jobId, () =>
        this.outcomes.retryOrFail(started, reason, WORKER_ID, [JobState.Running]),
      );
    } finally {
      await workDir.remove();
    }
  }

  /**
   * When the job was not simply assigned here: Bull hands out a job that was already running
   * (the worker that ran it was lost: run it again if the retry policy allows), or a run that
   * is stale (cancelled, deleted or placed elsewhere meanwhile: nothing to do).
   */
  private async startOtherwise({ jobId, deviceId, assignment }: Run): Promise<Job | undefined> {
    const placed = await this.em
      .fork()
      .findOne(Job, jobId, { fields: ['state', 'service', 'attempts', 'device', 'assignment'] });
    if (
      placed?.state !== JobState.Running ||
      placed.device?.id !== deviceId ||
      placed.assignment !== assignment
    ) {
      return undefined;
    }
    const manifest = this.catalog.manifest(placed.service);
    if (!manifest) {
      return placed as Job; // running, of a service that is gone: the caller fails it
    }
    if (placed.attempts >= Math.max(1, manifest.retry.attempts)) {
      await this.outcomes.move(jobId, {
        to: JobState.Failed,
        actor: WORKER_ID,
        reason: 'its worker was lost more often than the retry policy allows',
        patch: { finishedAt: new Date() },
        from: [JobState.Running],
      });
      return undefined;
    }
    const moved = await this.outcomes.move(jobId, {
      to: JobState.Running,
      actor: WORKER_ID,
      reason: `worker lost during attempt ${placed.attempts}; running it again`,
      patch: { startedAt: new Date(), progress: 0, worker: WORKER_ID },
      countsAttempt: true,
      from: [JobState.Running],
      onDevice: deviceId,
      inAssignment: assignment,
    });
    return moved?.job;
  }

  /** Aborts when the run is cancelled (see watchCancel: Redis, or PostgreSQL when Redis is away). */
  private cancellation(job: Job): Promise<CancelWatch> {
    return watchCancel({
      jobId: job.id,
      assignment: job.assignment,
      bus: this.bus,
      logger: this.logger,
      stillRunning: async () => {
        const now = await this.em.fork().findOne(Job, job.id, { fields: ['state', 'assignment'] });
        return now?.state === JobState.Running && now.assignment === job.assignment;
      },
    });
  }

  private async runHere(job: Job, manifest: ServiceManifest, workDir: WorkDir) {
    await workDir.prepare(job, this.storage);
    const { signal, stop } = await this.cancellation(job);
    let lastProgressAt = 0;
    let logOffset = 0;
    const flusher = new LogFlusher(this.storage, `jobs/${job.id}/log.txt`, workDir.logFile);
    const result = await runLocal({
      run: manifest.run,
      serviceDir: manifest.dir,
      workDir: workDir.root,
      logFile: workDir.logFile,
      signal,
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
        void this.outcomes.progress(job.id, progress, message);
      },
    }).finally(() => {
      stop();
      flusher.stop();
    });
    await this.keepLog(job.id, workDir.logFile);
    await this.recorded(job.id, () => this.conclude(job, manifest, workDir, result));
  }

  /**
   * The attempt ran: its outcome must reach PostgreSQL even if the database is away just now
   * (restarting, say). Waits for it rather than losing the outcome (and failing the job for
   * it); concluding twice is harmless, every move is guarded by the state it leaves.
   */
  private recorded<T>(jobId: string, work: () => Promise<T>): Promise<T> {
    return whenDatabaseIsBack(work, (err) =>
      this.logger.warn(`job ${jobId}: outcome waits for the database (${err.message})`),
    );
  }

  private async runOnCluster(
    job: Job,
    manifest: ServiceManifest,
    device: Device,
    workDir: WorkDir,
  ) {
    await workDir.prepare(job, this.storage);
    const { signal, stop } = await this.cancellation(job);
    const outcome = await runOnCluster({
      device,
      job,
      manifest,
      workDir,
      signal,
      publicUrl: this.config.publicUrl,
      onSubmitted: async (externalId) => {
        await this.em.fork().nativeUpdate(Job, { id: job.id }, { externalId });
      },
      onState: (state) => void this.outcomes.progress(job.id, job.progress, `cluster: ${state}`),
    }).finally(stop);
    if (outcome === 'submitted') {
      return; // the cluster calls the agent completion endpoint when the job ends
    }
    await this.keepLog(job.id, workDir.logFile);
    await this.recorded(job.id, () => this.conclude(job, manifest, workDir, outcome));
  }

  private async keepLog(jobId: string, file: string) {
    await this.storage
      .write(`jobs/${jobId}/log.txt`, createReadStream(file))
      .catch((err: Error) => this.logger.warn(`job ${jobId}: log not kept: ${err.message}`));
  }

  private async conclude(
    job: Job,
    manifest: ServiceManifest,
    workDir: WorkDir,
    result: AttemptResult,
  ) {
    if (result.outcome === 'cancelled') {
      return; // the API already moved it to cancelled
    }
    if (result.outcome !== 'exited' || result.exitCode !== 0) {
      const reason = result.reason ?? `ended with ${result.outcome}`;
      await this.outcomes.retryOrFail(job, reason, WORKER_ID, [JobState.Running]);
      return;
    }
    const failure = await this.finish(job, manifest, workDir);
    if (failure) {
      await this.outcomes.move(job.id, {
        to: JobState.Failed,
        actor: WORKER_ID,
        reason: failure,
        patch: { finishedAt: new Date() },
        from: [JobState.Running],
      });
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
    await this.outcomes.move(job.id, {
      to: JobState.Succeeded,
      actor: WORKER_ID,
      patch: {
        metrics,
        resultSize: stored.size,
        resultSha256: stored.sha256,
        progress: 100,
        finishedAt: new Date(),
      },
      from: [JobState.Running],
    });
    return undefined;
  }

  /** A cancelled job's cluster job, on a device whose cluster calls back (nobody polls it). */
  async cancelOnCluster(cancel: ClusterCancel): Promise<void> {
    const device = await this.em.fork().findOne(Device, cancel.deviceId);
    if (!device?.ssh) {
      return;
    }
    const problem = await cancelOnCluster(device.ssh, cancel.jobId, cancel.externalId);
    if (problem) {
      this.logger.warn(
        `job ${cancel.jobId}: cluster job ${cancel.externalId} not cancelled: ${problem}`,
      );
      throw new Error(problem); // Bull tries again
    }
  }

  /** Bull gave up on a run (stalled too often): the job fails unless it already ended. */
  async giveUp(run: Run, why: string): Promise<void> {
    // Called from Bull's `failed` event, unawaited: it must never reject (that would end the
    // worker). With the database away the job stays as it is (placed ones are handed over
    // again by the reconciler).
    const job = await this.em
      .fork()
      .findOne(Job, run.jobId)
      .catch((err: Error) => {
        this.logger.error(`job ${run.jobId}: could not read it to mark it failed: ${err.message}`);
        return null;
      });
    if (!job || job.assignment !== run.assignment || isFinal(job.state)) {
      return;
    }
    const reason = /stalled/i.test(why)
      ? 'its worker was lost more often than the retry policy allows'
      : why;
    await this.outcomes
      .move(run.jobId, {
        to: JobState.Failed,
        actor: WORKER_ID,
        reason,
        patch: { finishedAt: new Date() },
        from: [JobState.Assigned, JobState.Running],
      })
      .catch((err: Error) =>
        this.logger.error(`job ${run.jobId}: could not mark failed: ${err.message}`),
      );
  }
}
