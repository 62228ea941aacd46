import { HttpStatus, Injectable, NotFoundException, UnauthorizedException } from '@nestjs/common';
import { LockMode } from '@mikro-orm/core';
import { EntityManager, UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { AuditService } from '../audit/audit.service';
import { Outbox } from '../outbox/outbox.service';
import { CatalogService } from '../catalog/catalog.service';
import type { RequestOrigin } from '../common/auth.decorators';
import type { DevicePrincipal, Principal, UserPrincipal } from '../common/principal';
import { ProblemException, validationProblem } from '../common/problem';
import { AppConfig } from '../config';
import type { HeartbeatDto, HeartbeatReplyDto } from './dto/agent.dto';
import type {
  CreateDeviceDto,
  DeviceDto,
  DevicePageDto,
  DeviceWithTokenDto,
  ListDevicesQuery,
  UpdateDeviceDto,
} from './dto/device.dto';
import { DeviceCommandsService } from './device-commands.service';
import { DeviceEvents } from './device-events';
import {
  ALL_SERVICES,
  type AdminState,
  type DeviceRunner,
  type ObservedState,
  observedState,
} from './device-state';
import { DeviceTokens } from './device-tokens.service';
import { Device } from './device.entity';
import { toAgentCommandDto, toDeviceDto } from './device.mapper';

export interface DeviceOverview {
  id: string;
  name: string;
  runner: DeviceRunner;
  adminState: AdminState;
  state: ObservedState;
  /** Jobs assigned to or running on it. */
  activeJobs: number;
  slots: number;
}

/** How many unknown service keys a refusal names. */
const NAMED_UNKNOWN_SERVICES = 5;

/** The device registry (admin and operator API) and the liveness half of the agent protocol. */
@Injectable()
export class DevicesService {
  constructor(
    private readonly em: EntityManager,
    private readonly config: AppConfig,
    private readonly tokens: DeviceTokens,
    private readonly catalog: CatalogService,
    private readonly audit: AuditService,
    private readonly events: DeviceEvents,
    private readonly commands: DeviceCommandsService,
    private readonly outbox: Outbox,
  ) {}

  /** `actor`: the admin registering it; none when labgate itself does (the CLI). */
  async create(
    actor: Principal | undefined,
    dto: CreateDeviceDto,
    origin: RequestOrigin,
  ): Promise<DeviceWithTokenDto> {
    this.requireKnownServices(dto.services);
    const { token, tokenHash, tokenHint } = this.tokens.issue();
    const now = new Date();
    const device = await this.uniqueName(dto.name, () =>
      this.em.transactional((em) => {
        const created = em.create(Device, {
          name: dto.name,
          kind: dto.kind,
          runner: dto.runner,
          services: dto.services,
          slots: dto.slots,
          location: dto.location,
          labels: dto.labels ?? {},
          ssh: dto.ssh ? { ...dto.ssh } : undefined,
          adminState: 'enabled',
          activeJobs: 0,
          tokenHash,
          tokenHint,
          createdAt: now,
          updatedAt: now,
        });
        this.audit.record(
          {
            actor,
            action: 'device.create',
            targetType: 'device',
            targetId: created.id,
            origin,
            details: { ...dto, ssh: dto.ssh ? { ...dto.ssh } : undefined },
          },
          em,
        );
        return Promise.resolve(created);
      }),
    );
    this.events.emit({ deviceId: device.id, reason: 'created' });
    return { ...this.toDto(device), token };
  }

  /** A new token; the old one is refused from the moment this commits. */
  async rotateToken(
    actor: UserPrincipal,
    id: string,
    origin: RequestOrigin,
  ): Promise<DeviceWithTokenDto> {
    const { token, tokenHash, tokenHint } = this.tokens.issue();
    const device = await this.em.transactional(async (em) => {
      const device = await this.require(em, id);
      device.tokenHash = tokenHash;
      device.tokenHint = tokenHint;
      device.updatedAt = new Date();
      this.audit.record(
        { actor, action: 'device.rotate_token', targetType: 'device', targetId: id, origin },
        em,
      );
      return device;
    });
    return { ...this.toDto(device), token };
  }

  async list(query: ListDevicesQuery): Promise<DevicePageDto> {
    const now = Date.now();
    const devices = await this.em.getRepository(Device).list(
      {
        kind: query.kind,
        state: query.state,
        service: query.service,
        afterName: query.cursor ? decodeNameCursor(query.cursor) : undefined,
        limit: query.limit + 1,
      },
      new Date(now - this.config.deviceDownAfterMs),
    );
    const page = devices.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((d) => this.toDto(d, now)),
      nextCursor: devices.length > query.limit && last ? encodeNameCursor(last.name) : undefined,
    };
  }

  async get(id: string): Promise<DeviceDto> {
    return this.toDto(await this.require(this.em, id));
  }

  /** Every device with its states, for monitoring (the health module's metrics). */
  async overview(): Promise<DeviceOverview[]> {
    const now = Date.now();
    const devices = await this.em.fork().find(
      Device,
      {},
      {
        fields: ['id', 'name', 'runner', 'adminState', 'lastHeartbeatAt', 'activeJobs', 'slots'],
        orderBy: { name: 'asc' },
      },
    );
    return devices.map((d) => ({
      id: d.id,
      name: d.name,
      runner: d.runner,
      adminState: d.adminState,
      state: observedState(d, this.config.deviceDownAfterMs, now),
      activeJobs: d.activeJobs,
      slots: d.slots,
    }));
  }

  async update(
    actor: UserPrincipal,
    id: string,
    dto: UpdateDeviceDto,
    origin: RequestOrigin,
  ): Promise<DeviceDto> {
    if (dto.services) {
      this.requireKnownServices(dto.services);
    }
    const device = await this.uniqueName(dto.name, () =>
      this.em.transactional(async (em) => {
        const device = await this.require(em, id);
        this.checkSsh(device, dto);
        em.assign(device, {
          ...(dto.name !== undefined && { name: dto.name }),
          ...(dto.services !== undefined && { services: dto.services }),
          ...(dto.slots !== undefined && { slots: dto.slots }),
          ...(dto.labels !== undefined && { labels: dto.labels }),
          ...(dto.adminState !== undefined && { adminState: dto.adminState }),
          ...(dto.location !== undefined && { location: dto.location }),
          ...(dto.ssh !== undefined && { ssh: dto.ssh ? { ...dto.ssh } : null }),
          updatedAt: new Date(),
        });
        this.audit.record(
          {
            actor,
            action: 'device.update',
            targetType: 'device',
            targetId: id,
            origin,
            details: { ...dto, ssh: dto.ssh ? { ...dto.ssh } : dto.ssh },
          },
          em,
        );
        return device;
      }),
    );
    this.events.emit({ deviceId: id, reason: 'updated' });
    return this.toDto(device);
  }

  async remove(actor: UserPrincipal, id: string, origin: RequestOrigin): Promise<void> {
    await this.em.transactional(async (em) => {
      const device = await this.require(em, id);
      if (device.activeJobs > 0) {
        throw new ProblemException(
          HttpStatus.CONFLICT,
          `Device "${device.name}" has ${device.activeJobs} active job(s). Disable it first ` +
            `(PATCH adminState: "disabled") so that it gets no new jobs, cancel its jobs or wait ` +
            `for them to finish, then delete it.`,
          { type: 'urn:labgate:problem:device-busy', activeJobs: device.activeJobs },
        );
      }
      em.remove(device);
      this.audit.record(
        {
          actor,
          action: 'device.delete',
          targetType: 'device',
          targetId: id,
          origin,
          details: { name: device.name, kind: device.kind, runner: device.runner },
        },
        em,
      );
    });
    this.events.emit({ deviceId: id, reason: 'deleted' });
  }

  /** Liveness: records what the agent reports and hands it the commands it has not acked. */
  async heartbeat(caller: DevicePrincipal, dto: HeartbeatDto): Promise<HeartbeatReplyDto> {
    const now = new Date();
    const { device, commands, cameUp } = await this.em.transactional(async (em) => {
      // Locked, so that the down watch cannot mark it DOWN between this read and the write.
      const device = await em.findOne(Device, caller.deviceId, {
        lockMode: LockMode.PESSIMISTIC_WRITE,
      });
      if (!device) {
        // Deleted between the token check and now.
        throw new UnauthorizedException('This device is no longer registered.');
      }
      const cameUp = !device.lastHeartbeatAt || !!device.downSince;
      if (device.downSince) {
        // Back from DOWN: operators hear of it (notifications read the outbox).
        this.outbox.record(em, {
          type: 'device.up',
          subjectType: 'device',
          subjectId: device.id,
          data: { deviceName: device.name, downSince: device.downSince.toISOString() },
        });
      }
      em.assign(device, {
        lastHeartbeatAt: now,
        reportedStatus: dto.status ?? null,
        reportedMetrics: dto.metrics ?? null,
        reportedJobs: dto.runningJobs ?? [],
        downSince: null,
      });
      const commands = await this.commands.deliver(device.id, em, now);
      return { device, commands, cameUp };
    });
    if (cameUp) {
      this.events.emit({ deviceId: device.id, reason: 'up' });
    }
    return {
      deviceId: device.id,
      name: device.name,
      heartbeatSeconds: Math.max(1, Math.floor(this.config.deviceDownAfterMs / 3000)),
      commands: commands.map(toAgentCommandDto),
    };
  }

  private toDto(device: Device, now = Date.now()): DeviceDto {
    return toDeviceDto(device, this.config.deviceDownAfterMs, now);
  }

  private async require(em: EntityManager, id: string): Promise<Device> {
    const device = await em.findOne(Device, id);
    if (!device) {
      throw new NotFoundException(`There is no device ${id}.`);
    }
    return device;
  }

  private requireKnownServices(services: string[]): void {
    const unknown = services.filter((s) => s !== ALL_SERVICES && !this.catalog.manifest(s));
    if (unknown.length > 0) {
      // The first few only: the list may hold 200 keys of 100 characters.
      const named =
        unknown.slice(0, NAMED_UNKNOWN_SERVICES).join(', ') +
        (unknown.length > NAMED_UNKNOWN_SERVICES
          ? ` and ${unknown.length - NAMED_UNKNOWN_SERVICES} more`
          : '');
      throw validationProblem([
        {
          field: 'services',
          message:
            `unknown service key(s): ${named}; use keys of GET /api/v1/services ` +
            `or "${ALL_SERVICES}" for every service`,
        },
      ]);
    }
  }

  /** SSH settings belong to, and are required by, the ssh runner (fixed at registration). */
  private checkSsh(device: Device, dto: UpdateDeviceDto): void {
    if (dto.ssh === undefined) {
      return;
    }
    if (device.runner !== 'ssh' && dto.ssh !== null) {
      throw validationProblem([
        {
          field: 'ssh',
          message: `ssh is only for runner ssh; device "${device.name}" has runner ${device.runner}`,
        },
      ]);
    }
    if (device.runner === 'ssh' && dto.ssh === null) {
      throw validationProblem([{ field: 'ssh', message: 'ssh is required for runner ssh' }]);
    }
  }

  private async uniqueName<T>(name: string | undefined, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException && name !== undefined) {
        throw new ProblemException(
          HttpStatus.CONFLICT,
          `A device named "${name}" exists already; choose another name.`,
          { type: 'urn:labgate:problem:device-name-taken' },
        );
      }
      throw err;
    }
  }
}

/** The list is in name order and names are unique: the last name seen is the keyset. */
function encodeNameCursor(name: string): string {
  return Buffer.from(JSON.stringify({ name })).toString('base64url');
}

function decodeNameCursor(cursor: string): string {
  try {
    const { name } = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as { name?: unknown };
    if (typeof name === 'string') {
      return name;
    }
  } catch {
    // answered below
  }
  throw new ProblemException(HttpStatus.BAD_REQUEST, 'The cursor is not one this API gave out.', {
    errors: [{ field: 'cursor', message: 'cursor must be a nextCursor from a previous page' }],
  });
}
