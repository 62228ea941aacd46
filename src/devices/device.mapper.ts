import type { AgentCommandDto } from './dto/agent.dto';
import type { DeviceCommandDto } from './dto/command.dto';
import type { DeviceDto } from './dto/device.dto';
import type { DeviceCommand } from './device-command.entity';
import { observedState } from './device-state';
import type { Device } from './device.entity';

/** The observed state is computed here, at read time, from the last heartbeat. */
export function toDeviceDto(device: Device, downAfterMs: number, now = Date.now()): DeviceDto {
  return {
    id: device.id,
    name: device.name,
    kind: device.kind,
    runner: device.runner,
    services: device.services,
    slots: device.slots,
    location: device.location ?? undefined,
    labels: device.labels,
    adminState: device.adminState,
    state: observedState(device, downAfterMs, now),
    lastHeartbeatAt: device.lastHeartbeatAt ?? undefined,
    reportedStatus: device.reportedStatus ?? undefined,
    reportedMetrics: device.reportedMetrics ?? undefined,
    runningJobs: device.reportedJobs ?? [],
    activeJobs: device.activeJobs,
    ssh: device.ssh ?? undefined,
    tokenHint: device.tokenHint,
    createdAt: device.createdAt,
    updatedAt: device.updatedAt,
  };
}

export function toCommandDto(command: DeviceCommand): DeviceCommandDto {
  return {
    id: command.id,
    deviceId: command.device.id,
    type: command.type,
    args: command.args,
    state: command.state,
    issuedBy: command.issuedBy,
    createdAt: command.createdAt,
    deliveredAt: command.deliveredAt ?? undefined,
    acknowledgedAt: command.acknowledgedAt ?? undefined,
    message: command.message ?? undefined,
  };
}

/** What an agent needs of a command: no bookkeeping. */
export function toAgentCommandDto(command: DeviceCommand): AgentCommandDto {
  return { id: command.id, type: command.type, args: command.args, createdAt: command.createdAt };
}
