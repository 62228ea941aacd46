import { randomUUID } from 'node:crypto';
import { Entity, Enum, Index, ManyToOne, PrimaryKey, Property } from '@mikro-orm/core';
import { COMMAND_STATES, COMMAND_TYPES, type CommandState, type CommandType } from './device-state';
import { Device } from './device.entity';

/** An order for a device, delivered in a heartbeat reply and acknowledged by its agent. */
@Entity({ tableName: 'device_command' })
@Index({ properties: ['device', 'state', 'createdAt'] })
export class DeviceCommand {
  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @ManyToOne(() => Device, { deleteRule: 'cascade' })
  device!: Device;

  @Enum({ items: () => [...COMMAND_TYPES] })
  type!: CommandType;

  @Property({ type: 'json' })
  args: Record<string, unknown> = {};

  @Enum({ items: () => [...COMMAND_STATES] })
  state: CommandState = 'pending';

  /** A user id, or `system` (e.g. the stop sent when a job is cancelled). */
  @Property({ type: 'text' })
  issuedBy!: string;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  deliveredAt?: Date;

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  acknowledgedAt?: Date;

  /** The agent's answer in its ack. */
  @Property({ type: 'text', nullable: true })
  message?: string;
}
