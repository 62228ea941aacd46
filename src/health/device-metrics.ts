import { Injectable } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { ADMIN_STATES, OBSERVED_STATES } from '../devices/device-state';
import { DevicesService } from '../devices/devices.service';
import { DeviceQueues } from '../jobs/scheduling/device-queues';
import { MetricsRegistry } from './metrics.registry';

/** Runners whose jobs travel through a Bull queue of the device; agents pull from PostgreSQL. */
const QUEUED_RUNNERS = new Set(['local', 'ssh']);

/** Device states from PostgreSQL and the depth of each device's Bull queue, read at scrape. */
@Injectable()
export class DeviceMetrics {
  readonly name = 'devices';
  private readonly devices: Gauge<'state' | 'admin_state'>;
  private readonly deviceState: Gauge<'device' | 'state'>;
  private readonly adminState: Gauge<'device' | 'state'>;
  private readonly activeJobs: Gauge<'device'>;
  private readonly slots: Gauge<'device'>;
  private readonly queueDepth: Gauge<'device' | 'state'>;

  constructor(
    registry: MetricsRegistry,
    private readonly service: DevicesService,
    private readonly queues: DeviceQueues,
  ) {
    const registers = [registry];
    this.devices = new Gauge({
      name: 'labgate_devices',
      help: 'Devices by observed state (IDLE, BUSY, DOWN) and admin state.',
      labelNames: ['state', 'admin_state'],
      registers,
    });
    this.deviceState = new Gauge({
      name: 'labgate_device_state',
      help: 'Observed state of each device: 1 for its current state, 0 for the others.',
      labelNames: ['device', 'state'],
      registers,
    });
    this.adminState = new Gauge({
      name: 'labgate_device_admin_state',
      help: 'Admin state of each device (enabled, disabled, maintenance): 1 for its current one.',
      labelNames: ['device', 'state'],
      registers,
    });
    this.activeJobs = new Gauge({
      name: 'labgate_device_active_jobs',
      help: 'Jobs assigned to or running on each device.',
      labelNames: ['device'],
      registers,
    });
    this.slots = new Gauge({
      name: 'labgate_device_slots',
      help: 'Jobs each device runs at once.',
      labelNames: ['device'],
      registers,
    });
    this.queueDepth = new Gauge({
      name: 'labgate_device_queue_jobs',
      help: 'Jobs in the Bull queue of each local or SSH device: waiting, active (taken by a worker) or delayed.',
      labelNames: ['device', 'state'],
      registers,
    });
  }

  async collect(): Promise<void> {
    const devices = await this.service.overview();
    const depths = await Promise.all(
      devices.map((d) =>
        QUEUED_RUNNERS.has(d.runner) ? this.queues.depth(d.id) : Promise.resolve(undefined),
      ),
    );
    this.reset();
    for (const state of OBSERVED_STATES) {
      for (const admin_state of ADMIN_STATES) {
        this.devices.set({ state, admin_state }, 0);
      }
    }
    devices.forEach((d, i) => {
      this.devices.inc({ state: d.state, admin_state: d.adminState });
      for (const state of OBSERVED_STATES) {
        this.deviceState.set({ device: d.name, state }, state === d.state ? 1 : 0);
      }
      for (const state of ADMIN_STATES) {
        this.adminState.set({ device: d.name, state }, state === d.adminState ? 1 : 0);
      }
      this.activeJobs.set({ device: d.name }, d.activeJobs);
      this.slots.set({ device: d.name }, d.slots);
      const depth = depths[i];
      if (depth) {
        for (const [state, count] of Object.entries(depth)) {
          this.queueDepth.set({ device: d.name, state }, count);
        }
      }
    });
  }

  reset(): void {
    for (const gauge of [this.devices, this.deviceState, this.adminState]) {
      gauge.reset();
    }
    for (const gauge of [this.activeJobs, this.slots, this.queueDepth]) {
      gauge.reset();
    }
  }
}
