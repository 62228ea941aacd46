/**
 * Which waiting job goes to which free device slot: the rules plain Bull lacks. Pure, so that
 * fairness can be tested case by case; the scheduler feeds it rows and writes its answer.
 *
 * - A device is eligible for a job when it is up, enabled, offers the service (or is the job's
 *   target) and has a free slot. Among eligible devices the shortest queue wins (assigned +
 *   running jobs against its slots), ties to the least recently used.
 * - Fair share: the next job comes from the user with the fewest jobs assigned or running;
 *   between users with as many, from the one served least recently (round robin); then the
 *   higher priority, then the oldest. So one user's backlog cannot starve another.
 * - Caps: MAX_RUNNING_PER_USER over all services, a service's `maxRunningPerUser`, and its
 *   `maxConcurrentJobs` over all users.
 */
export interface FreeDevice {
  id: string;
  services: string[];
  slots: number;
  /** Jobs assigned to it or running on it. */
  active: number;
  lastAssignedAt?: Date;
}

export interface WaitingJob {
  id: string;
  ownerId: string;
  service: string;
  priority: number;
  createdAt: Date;
  targetDeviceId?: string;
}

export interface ServiceLimits {
  maxRunningPerUser?: number;
  maxConcurrentJobs?: number;
}

export interface PlacementInput {
  devices: FreeDevice[];
  /** Waiting jobs, in any order. */
  waiting: WaitingJob[];
  /** Jobs assigned or running now, per owner and service. */
  active: Array<{ ownerId: string; service: string; count: number }>;
  /** When each user last had a job placed (absent: not lately). */
  lastServed?: Array<{ ownerId: string; at: Date }>;
  maxRunningPerUser: number;
  limits: (service: string) => ServiceLimits;
  now?: Date;
}

export interface Placement {
  jobId: string;
  deviceId: string;
}

const ALL = '*';

function offers(device: FreeDevice, job: WaitingJob): boolean {
  if (job.targetDeviceId) {
    return device.id === job.targetDeviceId;
  }
  return device.services.includes(ALL) || device.services.includes(job.service);
}

function byQueueThenLru(a: FreeDevice, b: FreeDevice): number {
  const load = a.active / a.slots - b.active / b.slots;
  if (load !== 0) {
    return load;
  }
  return (a.lastAssignedAt?.getTime() ?? 0) - (b.lastAssignedAt?.getTime() ?? 0);
}

function byPriorityThenAge(a: WaitingJob, b: WaitingJob): number {
  return (
    b.priority - a.priority ||
    a.createdAt.getTime() - b.createdAt.getTime() ||
    a.id.localeCompare(b.id)
  );
}

function add(map: Map<string, number>, key: string, n: number) {
  map.set(key, (map.get(key) ?? 0) + n);
}

export function place(input: PlacementInput): Placement[] {
  const devices = input.devices.map((d) => ({ ...d }));
  const perUser = new Map<string, number>();
  const perUserService = new Map<string, number>();
  const perService = new Map<string, number>();
  const served = new Map<string, number>(
    (input.lastServed ?? []).map(({ ownerId, at }) => [ownerId, at.getTime()]),
  );
  for (const { ownerId, service, count } of input.active) {
    add(perUser, ownerId, count);
    add(perUserService, `${ownerId}\0${service}`, count);
    add(perService, service, count);
  }
  // One queue per (owner, service, target): each queue's head is its best job, and a job
  // that cannot be placed does not hide the jobs behind it that could.
  const queues = new Map<string, WaitingJob[]>();
  for (const job of input.waiting) {
    const key = `${job.ownerId}\0${job.service}\0${job.targetDeviceId ?? ''}`;
    const queue = queues.get(key) ?? [];
    queue.push(job);
    queues.set(key, queue);
  }
  for (const queue of queues.values()) {
    queue.sort(byPriorityThenAge);
  }

  let clock = input.now?.getTime() ?? Date.now();
  const placements: Placement[] = [];
  for (;;) {
    let best: { job: WaitingJob; device: FreeDevice; queue: WaitingJob[] } | undefined;
    for (const queue of queues.values()) {
      const job = queue[0];
      if (!job || !allowed(job, input, perUser, perUserService, perService)) {
        continue;
      }
      const device = devices
        .filter((d) => d.active < d.slots && offers(d, job))
        .sort(byQueueThenLru)[0];
      if (!device) {
        continue;
      }
      if (!best || fairer(job, best.job, perUser, served)) {
        best = { job, device, queue };
      }
    }
    if (!best) {
      return placements;
    }
    const { job, device, queue } = best;
    queue.shift();
    placements.push({ jobId: job.id, deviceId: device.id });
    device.active++;
    device.lastAssignedAt = new Date(++clock);
    served.set(job.ownerId, clock);
    add(perUser, job.ownerId, 1);
    add(perUserService, `${job.ownerId}\0${job.service}`, 1);
    add(perService, job.service, 1);
  }
}

function allowed(
  job: WaitingJob,
  input: PlacementInput,
  perUser: Map<string, number>,
  perUserService: Map<string, number>,
  perService: Map<string, number>,
): boolean {
  const limits = input.limits(job.service);
  return (
    (input.maxRunningPerUser <= 0 || (perUser.get(job.ownerId) ?? 0) < input.maxRunningPerUser) &&
    (!limits.maxRunningPerUser ||
      (perUserService.get(`${job.ownerId}\0${job.service}`) ?? 0) < limits.maxRunningPerUser) &&
    (!limits.maxConcurrentJobs || (perService.get(job.service) ?? 0) < limits.maxConcurrentJobs)
  );
}

/** Fewest active jobs of its owner first, then least recently served, then priority, age. */
function fairer(
  a: WaitingJob,
  b: WaitingJob,
  perUser: Map<string, number>,
  served: Map<string, number>,
): boolean {
  const load = (perUser.get(a.ownerId) ?? 0) - (perUser.get(b.ownerId) ?? 0);
  if (load !== 0) {
    return load < 0;
  }
  const turn = (served.get(a.ownerId) ?? 0) - (served.get(b.ownerId) ?? 0);
  return turn !== 0 ? turn < 0 : byPriorityThenAge(a, b) < 0;
}

/** Why a waiting job is still waiting, in words its owner can act on (or wait for). */
export function waitingReason(
  job: WaitingJob,
  input: Omit<PlacementInput, 'waiting'> & { eligibleDevices: number },
): string {
  const limits = input.limits(job.service);
  const mine = input.active.filter((a) => a.ownerId === job.ownerId);
  const total = mine.reduce((n, a) => n + a.count, 0);
  if (input.maxRunningPerUser > 0 && total >= input.maxRunningPerUser) {
    return `waiting: you have ${total} jobs running, the most one user may (MAX_RUNNING_PER_USER ${input.maxRunningPerUser})`;
  }
  const ofService = mine.find((a) => a.service === job.service)?.count ?? 0;
  if (limits.maxRunningPerUser && ofService >= limits.maxRunningPerUser) {
    return `waiting: you have ${ofService} ${job.service} jobs running, the most the service allows one user (${limits.maxRunningPerUser})`;
  }
  const service = input.active
    .filter((a) => a.service === job.service)
    .reduce((n, a) => n + a.count, 0);
  if (limits.maxConcurrentJobs && service >= limits.maxConcurrentJobs) {
    return `waiting: ${job.service} already runs ${service} jobs, its limit`;
  }
  if (input.eligibleDevices === 0) {
    return job.targetDeviceId
      ? 'waiting for its device to be up and enabled'
      : `waiting for a device that offers ${job.service} to be up and enabled`;
  }
  return 'waiting for a free slot';
}
