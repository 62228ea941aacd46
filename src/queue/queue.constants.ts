/**
 * Every Bull queue and job name, each job name with its typed payload. Producers and
 * processors both use `JobOf<Name>`, so a payload cannot drift between them.
 */
export enum QueueName {
  System = 'system',
  Jobs = 'jobs',
  Notifications = 'notifications',
}

export enum JobName {
  SystemPing = 'system.ping',
  RunJob = 'jobs.run',
  CancelOnCluster = 'jobs.cancel-on-cluster',
  Deliver = 'notifications.deliver',
  Retention = 'jobs.retention',
}

export interface JobPayloads {
  [JobName.SystemPing]: { requestedAt: string };
  /**
   * Runs a job placed on a device (queue `device.<id>`). `assignment` is the job's placement
   * count: a run for an older placement is stale and dropped.
   */
  [JobName.RunJob]: { jobId: string; deviceId: string; assignment: number };
  [JobName.Retention]: Record<string, never>;
  /** Ends a cancelled job's cluster job on a device nobody polls (SSH callback mode). */
  [JobName.CancelOnCluster]: { jobId: string; deviceId: string; externalId: string };
  /** The Bull job id is the delivery id: a delivery is never queued twice. */
  [JobName.Deliver]: { deliveryId: string };
}

export interface JobResults {
  [JobName.SystemPing]: { pong: true; requestedAt: string; worker: string };
  [JobName.RunJob]: void;
  [JobName.Retention]: { expired: number };
  [JobName.CancelOnCluster]: void;
  [JobName.Deliver]: void;
}

export type JobOf<N extends JobName> = JobPayloads[N];
export type ResultOf<N extends JobName> = JobResults[N];

/** Finished jobs leave Redis: PostgreSQL keeps history, Redis only carries work. */
export const EPHEMERAL_JOB = { removeOnComplete: true, removeOnFail: true } as const;
