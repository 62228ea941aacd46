import { canTransition, isFinal, JobState, statesBefore } from './job-state';

const all = Object.values(JobState);

describe('job lifecycle', () => {
  it.each([
    [JobState.Queued, JobState.Assigned],
    [JobState.Assigned, JobState.Running],
    [JobState.Running, JobState.Succeeded],
    [JobState.Running, JobState.Failed],
    [JobState.Running, JobState.Cancelled],
    [JobState.Queued, JobState.Cancelled],
    [JobState.Running, JobState.Queued],
    [JobState.Failed, JobState.Queued],
    [JobState.Succeeded, JobState.Expired],
  ])('allows %s → %s', (from, to) => {
    expect(canTransition(from, to)).toBe(true);
  });

  it.each([
    [JobState.Queued, JobState.Succeeded],
    [JobState.Queued, JobState.Running],
    [JobState.Succeeded, JobState.Running],
    [JobState.Succeeded, JobState.Failed],
    [JobState.Cancelled, JobState.Queued],
    [JobState.Expired, JobState.Queued],
    [JobState.Succeeded, JobState.Queued],
  ])('refuses %s → %s', (from, to) => {
    expect(canTransition(from, to)).toBe(false);
  });

  it('lets nothing leave expired', () => {
    expect(all.filter((to) => canTransition(JobState.Expired, to))).toEqual([]);
  });

  it('names the states a transition may start from', () => {
    expect(statesBefore(JobState.Cancelled).sort()).toEqual(
      [JobState.Assigned, JobState.Queued, JobState.Running].sort(),
    );
    expect(statesBefore(JobState.Succeeded)).toEqual([JobState.Running]);
  });

  it('calls succeeded, failed, cancelled and expired final', () => {
    expect(all.filter(isFinal).sort()).toEqual(
      [JobState.Succeeded, JobState.Failed, JobState.Cancelled, JobState.Expired].sort(),
    );
  });
});
