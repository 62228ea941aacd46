import { EntityRepository } from '@mikro-orm/postgresql';
import type { FilterQuery } from '@mikro-orm/core';
// Type-only: the entity module imports this one, so a value import would be a cycle.
import type { DeviceCommand } from './device-command.entity';
import type { AdminState, DeviceKind, ObservedState } from './device-state';
import type { Device } from './device.entity';

export interface DeviceListFilter {
  kind?: DeviceKind;
  state?: ObservedState | AdminState;
  /** Devices offering this service key, or every service (`*`). */
  service?: string;
  /** Keyset: names after this one (names are unique). */
  afterName?: string;
  limit: number;
}

/** Queries of the device aggregate (a device and its commands). */
export class DeviceRepository extends EntityRepository<Device> {
  /**
   * One page in name order. `heardSince` is the oldest heartbeat that still counts as alive,
   * so that the observed-state filter agrees with `observedState()`.
   */
  async list(filter: DeviceListFilter, heardSince: Date): Promise<Device[]> {
    const qb = this.createQueryBuilder('d');
    const where: FilterQuery<Device>[] = [];
    if (filter.kind) {
      where.push({ kind: filter.kind });
    }
    if (filter.afterName !== undefined) {
      where.push({ name: { $gt: filter.afterName } });
    }
    switch (filter.state) {
      case undefined:
        break;
      case 'DOWN':
        where.push({ $or: [{ lastHeartbeatAt: null }, { lastHeartbeatAt: { $lt: heardSince } }] });
        break;
      case 'IDLE':
        where.push({ lastHeartbeatAt: { $gte: heardSince }, activeJobs: { $lte: 0 } });
        break;
      case 'BUSY':
        where.push({ lastHeartbeatAt: { $gte: heardSince }, activeJobs: { $gt: 0 } });
        break;
      default:
        where.push({ adminState: filter.state });
    }
    qb.select('*').where({ $and: where });
    if (filter.service !== undefined) {
      qb.andWhere('(d.services @> ?::jsonb or d.services @> ?::jsonb)', [
        JSON.stringify([filter.service]),
        JSON.stringify(['*']),
      ]);
    }
    return qb.orderBy({ name: 'asc' }).limit(filter.limit).getResult();
  }

  /** Commands its agent has not acknowledged, oldest first. */
  openCommands(deviceId: string, limit: number): Promise<DeviceCommand[]> {
    return this.em.find<DeviceCommand>(
      'DeviceCommand',
      { device: deviceId, state: { $in: ['pending', 'delivered'] } },
      { orderBy: { createdAt: 'asc', id: 'asc' }, limit },
    );
  }

  /** Commands of a device, newest first, after the keyset (createdAt, id) when given. */
  commands(
    deviceId: string,
    limit: number,
    after?: { at: Date; id: string },
  ): Promise<DeviceCommand[]> {
    const where: FilterQuery<DeviceCommand> = { device: deviceId };
    if (after) {
      where.$or = [
        { createdAt: { $lt: after.at } },
        { createdAt: after.at, id: { $lt: after.id } },
      ];
    }
    return this.em.find<DeviceCommand>('DeviceCommand', where, {
      orderBy: { createdAt: 'desc', id: 'desc' },
      limit,
    });
  }
}
