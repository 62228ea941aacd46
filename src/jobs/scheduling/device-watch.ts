import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { AppConfig } from '../../config';
import { JobOutcomes } from '../job-outcomes.service';
import { JobState } from '../job-state';
import { Job } from '../job.entity';

/**
 * Notices devices that stopped sending heartbeats. A device found DOWN gives back its jobs:
 * placed ones return to the queue, started ones are retried or failed by their service's
 * retry policy. Every process watches; one UPDATE … RETURNING hands each device to one.
 */
@Injectable()
export class DeviceWatch implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(DeviceWatch.name);
  private timer?: NodeJS.Timeout;
  private sweeping = false;

  constructor(
    private readonly em: EntityManager,
    private readonly config: AppConfig,
    private readonly outcomes: JobOutcomes,
  ) {}

  onApplicationBootstrap(): void {
    const every = Math.min(5_000, Math.floor(this.config.deviceDownAfterMs / 4));
    this.timer = setInterval(() => void this.sweep(), every);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** Marks silent devices DOWN and gives back their jobs; returns the jobs given back. */
  async sweep(): Promise<number> {
    if (this.sweeping) {
      return 0;
    }
    this.sweeping = true;
    let given = 0;
    try {
      const seconds = Math.ceil(this.config.deviceDownAfterMs / 1000);
      // One statement: the mark and its outbox row (device.down, for operators) commit together.
      // A device that never sent a heartbeat was never up: it is DOWN when read, but no news.
      const down = await this.em
        .fork()
        .getConnection()
        .execute<Array<{ id: string; name: string }>>(
          `with down as (
             update device set down_since = now()
              where down_since is null and last_heartbeat_at < now() - ?::interval
             returning id, name, last_heartbeat_at),
           news as (
             insert into outbox_event (at, type, subject_type, subject_id, data)
             select now(), 'device.down', 'device', id::text,
                    jsonb_build_object('deviceName', name, 'lastHeartbeatAt', last_heartbeat_at,
                                       'seconds', ?::int)
               from down)
           select id, name from down`,
          [`${seconds} seconds`, seconds],
        );
      for (const device of down) {
        const jobs = await this.em
          .fork()
          .find(
            Job,
            { device: device.id, state: { $in: [JobState.Assigned, JobState.Running] } },
            { fields: ['id', 'service', 'attempts', 'state'] },
          );
        const reason = `device ${device.name} went DOWN (no heartbeat for ${seconds} s)`;
        for (const job of jobs) {
          const moved =
            job.state === JobState.Assigned
              ? await this.outcomes.move(job.id, {
                  to: JobState.Queued,
                  actor: 'system',
                  reason: `${reason}; back in the queue`,
                  patch: { device: null },
                  from: [JobState.Assigned],
                })
              : await this.outcomes.retryOrFail(job, reason, 'system', [JobState.Running]);
          given += moved ? 1 : 0;
        }
        if (jobs.length > 0) {
          this.logger.warn(`${reason}: gave back ${jobs.length} job(s)`);
        }
      }
    } catch (err) {
      this.logger.warn(`device watch failed: ${(err as Error).message}`);
    } finally {
      this.sweeping = false;
    }
    return given;
  }
}
