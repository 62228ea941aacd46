import { HttpStatus, Injectable, NotFoundException } from '@nestjs/common';
import { LockMode } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import { AuditService } from '../audit/audit.service';
import type { RequestOrigin } from '../common/auth.decorators';
import { decodeCursor, encodeCursor, PageQuery } from '../common/pagination';
import { ProblemException } from '../common/problem';
import type { DevicePrincipal, UserPrincipal } from '../common/principal';
import type { AckCommandDto, AckReplyDto } from './dto/agent.dto';
import type { DeviceCommandDto, DeviceCommandPageDto, IssueCommandDto } from './dto/command.dto';
import { DeviceCommand } from './device-command.entity';
import type { CommandType } from './device-state';
import { Device } from './device.entity';
import { toCommandDto } from './device.mapper';

/** Most commands one heartbeat reply carries; the rest follow in the next ones. */
export const MAX_COMMANDS_PER_HEARTBEAT = 100;

export interface NewCommand {
  type: CommandType;
  args?: Record<string, unknown>;
}

/**
 * Orders for devices. A command waits (`pending`) until its agent's next heartbeat carries it
 * (`delivered`), and is carried again in every heartbeat until the agent acknowledges it.
 */
@Injectable()
export class DeviceCommandsService {
  constructor(
    private readonly em: EntityManager,
    private readonly audit: AuditService,
  ) {}

  /**
   * Queues a command for a device (404 when there is none). `issuedBy` is a user id or
   * `system`; pass the EntityManager of your transaction to issue it as part of it.
   */
  issue(
    deviceId: string,
    command: NewCommand,
    issuedBy: string,
    em?: EntityManager,
  ): Promise<DeviceCommand> {
    const run = (tx: EntityManager) => this.create(tx, deviceId, command, { issuedBy });
    return em ? run(em) : this.em.transactional(run);
  }

  /** The operator API's way in: audited with who asked and from where. */
  async issueAs(
    actor: UserPrincipal,
    deviceId: string,
    dto: IssueCommandDto,
    origin: RequestOrigin,
  ): Promise<DeviceCommandDto> {
    const command = await this.em.transactional((em) =>
      this.create(em, deviceId, dto, { issuedBy: actor.userId, actor, origin }),
    );
    return toCommandDto(command);
  }

  async list(deviceId: string, query: PageQuery): Promise<DeviceCommandPageDto> {
    const after = query.cursor ? decodeCursor(query.cursor) : undefined;
    await this.requireDevice(this.em, deviceId);
    const commands = await this.em.getRepository(Device).commands(deviceId, query.limit + 1, after);
    const page = commands.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      items: page.map(toCommandDto),
      nextCursor:
        commands.length > query.limit && last ? encodeCursor(last.createdAt, last.id) : undefined,
    };
  }

  /** Every unacknowledged command of the device, oldest first; pending ones become delivered. */
  async deliver(deviceId: string, em: EntityManager, now = new Date()): Promise<DeviceCommand[]> {
    const open = await em.getRepository(Device).openCommands(deviceId, MAX_COMMANDS_PER_HEARTBEAT);
    for (const command of open) {
      if (command.state === 'pending') {
        command.state = 'delivered';
        command.deliveredAt = now;
      }
    }
    return open;
  }

  /** The agent's answer. Acknowledging again changes nothing and answers the same. */
  async ack(device: DevicePrincipal, id: string, dto: AckCommandDto): Promise<AckReplyDto> {
    return this.em.transactional(async (em) => {
      const command = await em.findOne(
        DeviceCommand,
        { id, device: device.deviceId },
        { lockMode: LockMode.PESSIMISTIC_WRITE },
      );
      if (!command) {
        throw new NotFoundException(`This device has no command ${id}.`);
      }
      if (command.state === 'acknowledged' || command.state === 'failed') {
        return { id, state: command.state };
      }
      const now = new Date();
      command.state = dto.ok ? 'acknowledged' : 'failed';
      command.acknowledgedAt = now;
      command.deliveredAt ??= now;
      command.message = dto.message;
      this.audit.record(
        {
          actor: device,
          action: `device_command.${command.state}`,
          targetType: 'device_command',
          targetId: id,
          details: { deviceId: device.deviceId, device: device.name, message: dto.message },
        },
        em,
      );
      return { id, state: command.state };
    });
  }

  private async create(
    em: EntityManager,
    deviceId: string,
    command: NewCommand,
    by: { issuedBy: string; actor?: UserPrincipal; origin?: RequestOrigin },
  ): Promise<DeviceCommand> {
    const device = await this.requireDevice(em, deviceId);
    if (device.runner !== 'agent') {
      // Nothing would ever collect it: only agents heartbeat for commands.
      throw new ProblemException(
        HttpStatus.CONFLICT,
        `Device ${device.name} has runner ${device.runner}: the workers run its jobs and it takes no commands; cancel its jobs instead.`,
      );
    }
    const created = em.create(DeviceCommand, {
      device,
      type: command.type,
      args: command.args ?? {},
      state: 'pending',
      issuedBy: by.issuedBy,
      createdAt: new Date(),
    });
    this.audit.record(
      {
        actor: by.actor,
        action: 'device_command.issue',
        targetType: 'device',
        targetId: deviceId,
        origin: by.origin,
        details: {
          commandId: created.id,
          type: created.type,
          args: created.args,
          issuedBy: by.issuedBy,
        },
      },
      em,
    );
    await em.flush();
    return created;
  }

  private async requireDevice(em: EntityManager, deviceId: string): Promise<Device> {
    const device = await em.findOne(Device, deviceId);
    if (!device) {
      throw new NotFoundException(`There is no device ${deviceId}.`);
    }
    return device;
  }
}
