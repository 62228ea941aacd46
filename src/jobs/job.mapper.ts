import type { JobDto, JobLinksDto, SubmittedJobDto } from './dto/job.dto';
import { JobState } from './job-state';
import type { Job } from './job.entity';

/**
 * What a job's page shows (and who may open it): an entity, or the plain row that
 * JobRepository.findView reads without hydrating one.
 */
export type JobView = Pick<
  Job,
  | 'id'
  | 'service'
  | 'serviceVersion'
  | 'state'
  | 'reason'
  | 'progress'
  | 'progressMessage'
  | 'inputs'
  | 'inputFiles'
  | 'attempts'
  | 'priority'
  | 'batchId'
  | 'targetDeviceId'
  | 'notBefore'
  | 'metrics'
  | 'resultSize'
  | 'resultSha256'
  | 'createdAt'
  | 'updatedAt'
  | 'startedAt'
  | 'finishedAt'
> & { owner: { id: string }; device?: { id: string } };

export function jobLinks(id: string): JobLinksDto {
  const self = `/api/v1/jobs/${id}`;
  return {
    self,
    events: `${self}/events`,
    log: `${self}/log`,
    result: `${self}/result`,
    cancel: `${self}/cancel`,
  };
}

export function toSubmittedDto(
  job: Pick<Job, 'id' | 'state' | 'targetDeviceId'>,
  token?: string,
): SubmittedJobDto {
  return {
    id: job.id,
    token,
    status: job.state,
    deviceId: job.targetDeviceId ?? undefined,
    links: jobLinks(job.id),
  };
}

export function toJobDto(job: JobView): JobDto {
  const links = jobLinks(job.id);
  return {
    id: job.id,
    service: job.service,
    serviceVersion: job.serviceVersion,
    status: job.state,
    reason: job.reason ?? undefined,
    progress: job.progress,
    progressMessage: job.progressMessage ?? undefined,
    inputs: job.inputs,
    inputFiles: job.inputFiles.map(({ input, filename, size, sha256 }) => ({
      input,
      filename,
      size,
      sha256,
    })),
    attempts: job.attempts,
    priority: job.priority,
    deviceId: job.device?.id ?? undefined,
    batchId: job.batchId ?? undefined,
    metrics: job.metrics ?? undefined,
    result:
      job.state === JobState.Succeeded && job.resultSha256
        ? { size: Number(job.resultSize), sha256: job.resultSha256, url: links.result }
        : undefined,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    startedAt: job.startedAt ?? undefined,
    finishedAt: job.finishedAt ?? undefined,
    links,
  };
}
