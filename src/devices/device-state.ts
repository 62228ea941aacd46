/**
 * What a device is and how it is seen. The admin state is what an operator set; the observed
 * state is computed from the last heartbeat each time it is read, so it is never stale.
 */
export const DEVICE_KINDS = ['gpu', 'workstation', 'enclosure', 'hpc'] as const;
export type DeviceKind = (typeof DEVICE_KINDS)[number];

/** Where and how a device runs a service's command. */
export const DEVICE_RUNNERS = ['local', 'agent', 'ssh'] as const;
export type DeviceRunner = (typeof DEVICE_RUNNERS)[number];

export const ADMIN_STATES = ['enabled', 'disabled', 'maintenance'] as const;
export type AdminState = (typeof ADMIN_STATES)[number];

export const OBSERVED_STATES = ['IDLE', 'BUSY', 'DOWN'] as const;
export type ObservedState = (typeof OBSERVED_STATES)[number];

/** A device offering this service key offers every service. */
export const ALL_SERVICES = '*';

export const COMMAND_TYPES = ['start', 'stop', 'restart', 'custom'] as const;
export type CommandType = (typeof COMMAND_TYPES)[number];

/** pending → delivered (in a heartbeat reply) → acknowledged | failed (the agent's ack). */
export const COMMAND_STATES = ['pending', 'delivered', 'acknowledged', 'failed'] as const;
export type CommandState = (typeof COMMAND_STATES)[number];

export const DEVICE_TOKEN_PREFIX = 'lgd_';

export function observedState(
  device: { lastHeartbeatAt?: Date | null; activeJobs: number },
  downAfterMs: number,
  now = Date.now(),
): ObservedState {
  if (!device.lastHeartbeatAt || now - device.lastHeartbeatAt.getTime() > downAfterMs) {
    return 'DOWN';
  }
  return device.activeJobs > 0 ? 'BUSY' : 'IDLE';
}

export function offersService(device: { services: string[] }, service: string): boolean {
  return device.services.includes(ALL_SERVICES) || device.services.includes(service);
}
