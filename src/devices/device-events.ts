import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Subject } from 'rxjs';

export interface DeviceChange {
  deviceId: string;
  /** `up`: a heartbeat from a device that had never sent one, or that was found DOWN. */
  reason: 'created' | 'updated' | 'deleted' | 'up';
}

/**
 * Changes that may add or remove capacity, announced after they are committed, so that the
 * scheduler can run a pass at once instead of at its next tick. In-process only: other
 * processes catch up through their periodic pass.
 */
@Injectable()
export class DeviceEvents implements OnModuleDestroy {
  private readonly subject = new Subject<DeviceChange>();
  readonly changes$ = this.subject.asObservable();

  emit(change: DeviceChange): void {
    this.subject.next(change);
  }

  onModuleDestroy(): void {
    this.subject.complete();
  }
}
