/**
 * The job lifecycle, in one place:
 *   queued → assigned → running → succeeded | failed | cancelled, and expired when retention
 *   removes its files. A job goes back to queued when its worker or device is lost (or a
 *   failed job is retried by its owner).
 */
export enum JobState {
  Queued = 'queued',
  Assigned = 'assigned',
  Running = 'running',
  Succeeded = 'succeeded',
  Failed = 'failed',
  Cancelled = 'cancelled',
  Expired = 'expired',
}

const TRANSITIONS: Record<JobState, readonly JobState[]> = {
  [JobState.Queued]: [JobState.Assigned, JobState.Cancelled, JobState.Failed],
  [JobState.Assigned]: [JobState.Running, JobState.Queued, JobState.Cancelled, JobState.Failed],
  [JobState.Running]: [
    JobState.Succeeded,
    JobState.Failed,
    JobState.Cancelled,
    JobState.Queued,
    JobState.Running,
  ],
  [JobState.Succeeded]: [JobState.Expired],
  [JobState.Failed]: [JobState.Queued, JobState.Expired],
  [JobState.Cancelled]: [JobState.Expired],
  [JobState.Expired]: [],
};

export const FINAL_STATES: readonly JobState[] = [
  JobState.Succeeded,
  JobState.Failed,
  JobState.Cancelled,
  JobState.Expired,
];

export function canTransition(from: JobState, to: JobState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The states a job may be in to move to `to` (for guarded UPDATE … WHERE state IN (…)). */
export function statesBefore(to: JobState): JobState[] {
  return (Object.keys(TRANSITIONS) as JobState[]).filter((from) => canTransition(from, to));
}

export function isFinal(state: JobState): boolean {
  return FINAL_STATES.includes(state);
}
