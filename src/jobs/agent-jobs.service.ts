import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { HttpStatus, Injectable, NotFoundException, StreamableFile } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import type { Request } from 'express';
import * as tar from 'tar';
import { CatalogService } from '../catalog/catalog.service';
import { validateMetrics } from '../catalog/input-validation';
import type { ServiceManifest } from '../catalog/manifest';
import type { DevicePrincipal } from '../common/principal';
import { ProblemException, validationProblem } from '../common/problem';
import { AppConfig } from '../config';
import { BlobStorage } from '../storage/blob-storage';
import { readCompletion } from './agent-completion';
import type { AgentJobStatusDto, ClaimedJobDto } from './dto/agent-job.dto';
import { JobEventsBus } from './job-events.bus';
import { JobOutcomes } from './job-outcomes.service';
import { JobState } from './job-state';
import { Job } from './job.entity';
import { JobScheduler } from './scheduling/job-scheduler';
import { WorkDir } from './work-dir';

const actorOf = (device: DevicePrincipal) => `device:${device.name}`;

/**
 * The job side of the agent protocol (docs/agent-protocol.md): a device claims the jobs the
 * scheduler placed on it, reports progress, and completes or fails them. A device sees only
 * its own jobs: anything else is a 404, as if it did not exist.
 */
@Injectable()
export class AgentJobsService {
  constructor(
    private readonly em: EntityManager,
    private readonly config: AppConfig,
    private readonly catalog: CatalogService,
    private readonly storage: BlobStorage,
    private readonly bus: JobEventsBus,
    private readonly outcomes: JobOutcomes,
    private readonly scheduler: JobScheduler,
  ) {}

  /** Long-poll: the next job placed on this device, or undefined after `waitSeconds`. */
  async claim(
    device: DevicePrincipal,
    waitSeconds: number,
    req: Request,
  ): Promise<ClaimedJobDto | undefined> {
    const deadline = Date.now() + waitSeconds * 1000;
    let wake: () => void = () => {};
    let woken = false;
    const unsubscribe = await this.bus.onDeviceWork(device.deviceId, () => {
      woken = true;
      wake();
    });
    let gone = false;
    const onClose = () => {
      gone = true;
      wake();
    };
    req.on('close', onClose);
    this.scheduler.kick(); // an idle device asking for work is news for the scheduler
    try {
      for (;;) {
        if (gone) {
          return undefined; // the agent hung up: claiming now would strand the job
        }
        woken = false;
        const claimed = await this.claimOne(device);
        if (claimed) {
          return claimed;
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          return undefined;
        }
        if (!woken) {
          // A missed message costs at most a few seconds: PostgreSQL is read again.
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, Math.min(remaining, 3_000));
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
      }
    } finally {
      req.off('close', onClose);
      unsubscribe();
    }
  }

  private async claimOne(device: DevicePrincipal): Promise<ClaimedJobDto | undefined> {
    const candidates = await this.em
      .fork()
      .find(
        Job,
        { device: device.deviceId, state: JobState.Assigned },
        { orderBy: { priority: 'desc', createdAt: 'asc' }, limit: 5, fields: ['id', 'attempts'] },
      );
    for (const candidate of candidates) {
      const moved = await this.outcomes.move(candidate.id, {
        to: JobState.Running,
        actor: actorOf(device),
        patch: {
          attempts: candidate.attempts + 1,
          startedAt: new Date(),
          progress: 0,
          worker: actorOf(device),
        },
        from: [JobState.Assigned],
        onDevice: device.deviceId,
      });
      if (!moved) {
        continue; // cancelled or claimed meanwhile
      }
      const manifest = this.catalog.manifest(moved.job.service);
      if (!manifest) {
        await this.outcomes.move(moved.job.id, {
          to: JobState.Failed,
          actor: 'system',
          reason: `service ${moved.job.service} no longer exists`,
          patch: { finishedAt: new Date() },
        });
        continue;
      }
      return toClaimed(moved.job, manifest);
    }
    return undefined;
  }

  private async ownJob(device: DevicePrincipal, id: string): Promise<Job> {
    const job = await this.em.fork().findOne(Job, { id, device: device.deviceId });
    if (!job) {
      throw new NotFoundException(`There is no job ${id} on this device.`);
    }
    return job;
  }

  private notRunning(job: Job): ProblemException {
    return new ProblemException(
      HttpStatus.CONFLICT,
      `The job is ${job.state}${job.reason ? ` (${job.reason})` : ''}; stop working on it.`,
    );
  }

  /** The job's inputs as the work dir a local run sees: inputs.json and inputs/, tar.gz. */
  async inputs(device: DevicePrincipal, id: string): Promise<StreamableFile> {
    const job = await this.ownJob(device, id);
    if (job.state !== JobState.Running) {
      throw this.notRunning(job);
    }
    const dir = new WorkDir(join(this.config.varDir, 'tmp', `agent-inputs-${randomUUID()}`));
    try {
      await dir.prepare(job, this.storage);
    } catch (err) {
      await dir.remove();
      throw err;
    }
    const archive = tar.c({ gzip: true, cwd: dir.root, portable: true }, ['inputs.json', 'inputs']);
    let removed = false;
    const cleanup = () => {
      if (!removed) {
        removed = true;
        void dir.remove();
      }
    };
    archive.on('end', cleanup);
    archive.on('error', cleanup);
    archive.on('close', cleanup);
    return new StreamableFile(archive as unknown as NodeJS.ReadableStream as never, {
      type: 'application/gzip',
      disposition: `attachment; filename="${id}-inputs.tar.gz"`,
    });
  }

  async progress(
    device: DevicePrincipal,
    id: string,
    percent: number,
    message?: string,
  ): Promise<AgentJobStatusDto> {
    const job = await this.ownJob(device, id);
    if (job.state !== JobState.Running) {
      throw this.notRunning(job);
    }
    await this.outcomes.progress(id, percent, message);
    return { id, status: job.state };
  }

  async complete(device: DevicePrincipal, id: string, req: Request): Promise<AgentJobStatusDto> {
    const job = await this.ownJob(device, id);
    if (job.state === JobState.Succeeded) {
      req.resume(); // completion is idempotent: the first one's result stays
      return { id, status: job.state };
    }
    if (job.state !== JobState.Running) {
      req.resume();
      throw this.notRunning(job);
    }
    const manifest = this.catalog.manifest(job.service);
    const maxBytes = manifest?.run.maxOutputBytes ?? 100 * 1024 * 1024;
    const completion = await readCompletion(req, this.storage, id, maxBytes);
    const discard = async () => {
      for (const blob of [completion.result, completion.log]) {
        if (blob) {
          await this.storage.delete(blob.key).catch(() => {});
        }
      }
    };
    if (manifest && (completion.metrics !== undefined || manifest.resultSchema)) {
      const problems = validateMetrics(manifest, completion.metrics ?? {});
      if (problems.length > 0) {
        await discard();
        throw validationProblem(problems.map((p) => ({ ...p, field: `metrics.${p.field}` })));
      }
    }
    const moved = await this.outcomes.move(id, {
      to: JobState.Succeeded,
      actor: actorOf(device),
      patch: {
        metrics: completion.metrics,
        resultSize: completion.result?.size,
        resultSha256: completion.result?.sha256,
        progress: 100,
        finishedAt: new Date(),
      },
      from: [JobState.Running],
      onDevice: device.deviceId,
    });
    if (!moved) {
      const now = await this.ownJob(device, id);
      if (now.state === JobState.Succeeded) {
        return { id, status: now.state }; // a concurrent completion won
      }
      await discard();
      throw this.notRunning(now);
    }
    return { id, status: moved.job.state };
  }

  async fail(device: DevicePrincipal, id: string, reason: string): Promise<AgentJobStatusDto> {
    const job = await this.ownJob(device, id);
    if (job.state !== JobState.Running) {
      throw this.notRunning(job);
    }
    const moved = await this.outcomes.retryOrFail(
      job,
      `${device.name} reported: ${reason}`,
      actorOf(device),
      [JobState.Running],
      device.deviceId,
    );
    if (!moved) {
      throw this.notRunning(await this.ownJob(device, id));
    }
    return { id, status: moved.job.state };
  }
}

function toClaimed(job: Job, manifest: ServiceManifest): ClaimedJobDto {
  return {
    id: job.id,
    service: job.service,
    serviceVersion: job.serviceVersion,
    attempt: job.attempts,
    inputs: job.inputs,
    inputFiles: job.inputFiles.map(({ input, filename, path, size, sha256 }) => ({
      input,
      filename,
      path,
      size,
      sha256,
    })),
    run: {
      command: manifest.run.command,
      env: manifest.run.env,
      timeoutSeconds: manifest.run.timeoutSeconds,
      maxOutputBytes: manifest.run.maxOutputBytes,
    },
    inputsUrl: `/api/v1/agent/jobs/${job.id}/inputs`,
  };
}
