import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bull';
import { createBullBoard } from '@bull-board/api';
import { BullAdapter } from '@bull-board/api/bullAdapter';
import type { IServerAdapter } from '@bull-board/api/typings/app';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bull';
import type { Request, Response, NextFunction } from 'express';
import type { DeviceRunner } from '../devices/device-state';
import { type DeviceDto, ListDevicesQuery } from '../devices/dto/device.dto';
import { DevicesService } from '../devices/devices.service';
import { DeviceQueues } from '../jobs/scheduling/device-queues';
import { QueueName } from '../queue/queue.constants';

/** Runners whose jobs go through a Bull queue of the device; agents pull from PostgreSQL. */
const QUEUED_RUNNERS: readonly DeviceRunner[] = ['local', 'ssh'];

const SHARED_QUEUES: Record<QueueName, string> = {
  [QueueName.System]: 'Worker pings (readiness).',
  [QueueName.Jobs]: 'Housekeeping: the retention sweep. Job runs go to the device queues.',
  [QueueName.Notifications]: 'Mail and webhook deliveries.',
};

const PAGE_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  // The page has inline style attributes and one <style> element.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface DeviceLabel {
  displayName: string;
  description: string;
}

interface ShownDevice extends DeviceLabel {
  queue: Queue;
}

/**
 * Bull Board over every queue: the shared ones (queue.constants.ts) and one per local or SSH
 * device (`device.<id>`). Devices are read again on each request to the board, so a device
 * registered by any API process after boot appears at the next refresh of the page.
 *
 * Read-only: PostgreSQL is the truth about jobs, and a job retried, removed or promoted in
 * Redis behind its back would disagree with it, unaudited. Changes go through the API.
 */
@Injectable()
export class QueueBoard implements OnModuleDestroy {
  readonly adapter = new ExpressAdapter();
  private readonly board: ReturnType<typeof createBullBoard>;
  private readonly shown = new Map<string, ShownDevice>();
  private syncing?: Promise<void>;

  constructor(
    @InjectQueue(QueueName.System) system: Queue,
    @InjectQueue(QueueName.Jobs) jobs: Queue,
    @InjectQueue(QueueName.Notifications) notifications: Queue,
    private readonly deviceQueues: DeviceQueues,
    private readonly devices: DevicesService,
  ) {
    const queues: Record<QueueName, Queue> = {
      [QueueName.System]: system,
      [QueueName.Jobs]: jobs,
      [QueueName.Notifications]: notifications,
    };
    const shared = Object.values(QueueName).map(
      (name) =>
        new BullAdapter(queues[name], { readOnlyMode: true, description: SHARED_QUEUES[name] }),
    );
    this.board = createBullBoard({
      queues: shared,
      // @bull-board/express 9.10.1 (the newest published) declares its types against its own
      // copy of @bull-board/api 9.10.1; the interface is the same as 9.10.2's at runtime.
      serverAdapter: this.adapter as unknown as IServerAdapter,
      options: { uiConfig: { boardTitle: 'labgate queues' } },
    });
  }

  /**
   * Express middleware: the board is a page, while the API-wide security headers forbid
   * answers to load anything at all. Its own scripts and styles, nothing from elsewhere (the
   * web font it links to stays out: an admin page should not call third parties).
   */
  readonly pagePolicy = (_req: Request, res: Response, next: NextFunction): void => {
    res.setHeader('Content-Security-Policy', PAGE_POLICY);
    next();
  };

  /** Express middleware: brings the device queues up to date before the board answers. */
  readonly refresh = (req: Request, _res: Response, next: NextFunction): void => {
    if (req.path.startsWith('/static/')) {
      next();
      return;
    }
    this.syncing ??= this.syncDevices().finally(() => (this.syncing = undefined));
    this.syncing.then(
      () => next(),
      (err: Error) => next(err),
    );
  };

  private async syncDevices(): Promise<void> {
    const wanted = new Map<string, DeviceLabel>();
    let cursor: string | undefined;
    do {
      const page = await this.devices.list(
        Object.assign(new ListDevicesQuery(), { limit: 200, cursor }),
      );
      for (const device of page.items) {
        if (QUEUED_RUNNERS.includes(device.runner)) {
          wanted.set(device.id, labelOf(device));
        }
      }
      cursor = page.nextCursor;
    } while (cursor);

    for (const [id, shown] of this.shown) {
      const label = wanted.get(id);
      if (label?.displayName !== shown.displayName || label.description !== shown.description) {
        this.board.removeQueue(DeviceQueues.queueName(id));
        this.shown.delete(id);
        await this.deviceQueues.close(shown.queue, true);
      }
    }
    for (const [id, label] of wanted) {
      if (!this.shown.has(id)) {
        const queue = this.deviceQueues.open(id);
        this.shown.set(id, { queue, ...label });
        this.board.addQueue(new BullAdapter(queue, { readOnlyMode: true, ...label }));
      }
    }
  }

  async onModuleDestroy(): Promise<void> {
    await this.syncing?.catch(() => {});
    await Promise.all(
      [...this.shown.values()].map(({ queue }) => this.deviceQueues.close(queue, true)),
    );
    this.shown.clear();
  }
}

function labelOf(device: DeviceDto): DeviceLabel {
  const slots = `${device.slots} slot${device.slots === 1 ? '' : 's'}`;
  return {
    displayName: `device ${device.name}`,
    description: `${device.runner} runner, ${slots}; Bull queue ${DeviceQueues.queueName(device.id)}`,
  };
}
