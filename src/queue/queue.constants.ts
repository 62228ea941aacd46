/**
 * Every Bull queue and job name, each job name with its typed payload. Producers and
 * processors both use `JobOf<Name>`, so a payload cannot drift between them.
 */
export enum QueueName {
  System = 'system',
  Jobs = 'jobs',
}

export enum JobName {
  SystemPing = 'system.ping',
  RunJob = 'jobs.run',
  Retention = 'jobs.retention',
}

export interface JobPayloads {
  [JobName.SystemPing]: { requestedAt: string };
  /** The Bull job id is the labgate job id, so that a job is never enqueued twice. */
  [JobName.RunJob]: { jobId: string };
  [JobName.Retention]: Record<string, never>;
}

export interface JobResults {
  [JobName.SystemPing]: { pong: true; requestedAt: string; worker: string };
  [JobName.RunJob]: void;
  [JobName.Retention]: { expired: number };
}

export type JobOf<N extends JobName> = JobPayloads[N];
export type ResultOf<N extends JobName> = JobResults[N];

/** Finished jobs leave Redis: PostgreSQL keeps history, Redis only carries work. */
export const EPHEMERAL_JOB = { removeOnComplete: true, removeOnFail: true } as const;
