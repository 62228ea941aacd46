import { FreeDevice, place, PlacementInput, WaitingJob, waitingReason } from './placement';

const at = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, n));

function device(id: string, overrides: Partial<FreeDevice> = {}): FreeDevice {
  return { id, services: ['*'], slots: 1, active: 0, ...overrides };
}

function jobs(owner: string, n: number, from: number, overrides: Partial<WaitingJob> = {}) {
  return Array.from({ length: n }, (_, i) => ({
    id: `${owner}-${String(i).padStart(3, '0')}`,
    ownerId: owner,
    service: 'svc',
    priority: 0,
    createdAt: at(from + i),
    ...overrides,
  }));
}

function input(overrides: Partial<PlacementInput>): PlacementInput {
  return {
    devices: [],
    waiting: [],
    active: [],
    maxRunningPerUser: 0,
    limits: () => ({}),
    ...overrides,
  };
}

describe('place', () => {
  it('gives a freed slot to the user with fewest running jobs, not to the oldest backlog', () => {
    const placements = place(
      input({
        devices: [device('d1', { slots: 2, active: 1 })],
        waiting: [...jobs('alice', 50, 0), ...jobs('bob', 5, 100)],
        active: [{ ownerId: 'alice', service: 'svc', count: 1 }],
      }),
    );
    expect(placements).toEqual([{ jobId: 'bob-000', deviceId: 'd1' }]);
  });

  it('takes turns between users with as many running jobs: least recently served first', () => {
    const placements = place(
      input({
        devices: [device('d1', { slots: 1 })],
        waiting: [...jobs('alice', 50, 0), ...jobs('bob', 5, 100)],
        lastServed: [{ ownerId: 'alice', at: at(200) }],
      }),
    );
    // Both run nothing now; alice had the slot last, so bob's turn despite alice's older jobs.
    expect(placements).toEqual([{ jobId: 'bob-000', deviceId: 'd1' }]);
  });

  it('alternates between users when several slots free at once', () => {
    const placements = place(
      input({
        devices: [device('d1', { slots: 4 })],
        waiting: [...jobs('alice', 50, 0), ...jobs('bob', 5, 100)],
      }),
    );
    expect(placements.map((p) => p.jobId)).toEqual([
      'alice-000',
      'bob-000',
      'alice-001',
      'bob-001',
    ]);
  });

  it("orders one user's jobs by priority, then age", () => {
    const placements = place(
      input({
        devices: [device('d1', { slots: 3 })],
        waiting: [
          ...jobs('alice', 2, 0),
          { id: 'urgent', ownerId: 'alice', service: 'svc', priority: 5, createdAt: at(50) },
        ],
      }),
    );
    expect(placements.map((p) => p.jobId)).toEqual(['urgent', 'alice-000', 'alice-001']);
  });

  it('places on the shortest queue, ties to the least recently used device', () => {
    const placements = place(
      input({
        devices: [
          device('busy', { slots: 2, active: 1, lastAssignedAt: at(0) }),
          device('recent', { slots: 2, lastAssignedAt: at(9) }),
          device('old', { slots: 2, lastAssignedAt: at(1) }),
        ],
        waiting: jobs('alice', 3, 0),
      }),
    );
    expect(placements.map((p) => p.deviceId)).toEqual(['old', 'recent', 'busy']);
  });

  it('only uses devices offering the service, and a target device only for its job', () => {
    const placements = place(
      input({
        devices: [device('gpu', { services: ['other'] }), device('enclosure', { services: [] })],
        waiting: [
          ...jobs('alice', 1, 0),
          {
            id: 'session',
            ownerId: 'alice',
            service: 'svc',
            priority: 0,
            createdAt: at(1),
            targetDeviceId: 'enclosure',
          },
        ],
      }),
    );
    expect(placements).toEqual([{ jobId: 'session', deviceId: 'enclosure' }]);
  });

  it('keeps a user at MAX_RUNNING_PER_USER waiting while others run', () => {
    const placements = place(
      input({
        devices: [device('d1', { slots: 5 })],
        waiting: [...jobs('alice', 5, 0), ...jobs('bob', 1, 10)],
        active: [{ ownerId: 'alice', service: 'svc', count: 1 }],
        maxRunningPerUser: 2,
      }),
    );
    expect(placements.map((p) => p.jobId)).toEqual(['bob-000', 'alice-000']);
  });

  it("applies the service per-user cap without blocking that user's other services", () => {
    const placements = place(
      input({
        devices: [device('d1', { slots: 5 })],
        waiting: [
          ...jobs('alice', 3, 0),
          ...jobs('alice', 1, 10, { service: 'other', id: 'other' }),
        ],
        limits: (service) => (service === 'svc' ? { maxRunningPerUser: 1 } : {}),
      }),
    );
    expect(placements.map((p) => p.jobId).sort()).toEqual(['alice-000', 'other']);
  });

  it('explains why a job waits', () => {
    const base = {
      devices: [],
      active: [{ ownerId: 'alice', service: 'svc', count: 2 }],
      limits: () => ({}),
    };
    const [job] = jobs('alice', 1, 0);
    expect(waitingReason(job, { ...base, maxRunningPerUser: 2, eligibleDevices: 1 })).toMatch(
      /you have 2 jobs running.*MAX_RUNNING_PER_USER 2/,
    );
    expect(waitingReason(job, { ...base, maxRunningPerUser: 0, eligibleDevices: 0 })).toBe(
      'waiting for a device that offers svc to be up and enabled',
    );
    expect(waitingReason(job, { ...base, maxRunningPerUser: 0, eligibleDevices: 2 })).toBe(
      'waiting for a free slot',
    );
  });
});
