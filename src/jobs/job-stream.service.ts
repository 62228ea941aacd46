import { Injectable } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { Observable } from 'rxjs';
import { JobEventsBus, JobUpdate } from './job-events.bus';
import { isFinal } from './job-state';
import { Job } from './job.entity';
import { toJobDto } from './job.mapper';

const KEEPALIVE_MS = 15_000;

/**
 * A job's Server-Sent Events: the current state first (so a late subscriber misses nothing),
 * then every update from whichever worker runs it; the stream ends with the final state.
 */
@Injectable()
export class JobStreamService {
  constructor(
    private readonly em: EntityManager,
    private readonly bus: JobEventsBus,
  ) {}

  events(job: Job): Observable<MessageEvent> {
    return new Observable<MessageEvent>((subscriber) => {
      let unsubscribe: (() => void) | undefined;
      let lastState = job.state;
      const send = (type: string, data: unknown) => subscriber.next({ type, data } as MessageEvent);
      const onUpdate = (update: JobUpdate) => {
        if (update.type === 'cancel') {
          return;
        }
        if (update.type === 'state') {
          lastState = update.state;
        }
        send(update.type, update);
        if (update.type === 'state' && isFinal(update.state)) {
          subscriber.complete();
        }
      };
      const keepalive = setInterval(() => send('ping', {}), KEEPALIVE_MS);
      send('state', { type: 'state', ...snapshot(job) });
      if (isFinal(job.state)) {
        subscriber.complete();
      } else {
        void this.bus.subscribe(job.id, onUpdate).then(async (stop) => {
          unsubscribe = stop;
          if (subscriber.closed) {
            stop();
            return;
          }
          // Anything that happened between the first read and the subscription: from PostgreSQL.
          const now = await this.em.fork().findOne(Job, job.id);
          if (now && now.state !== lastState) {
            onUpdate({
              type: 'state',
              jobId: job.id,
              state: now.state,
              reason: now.reason,
              at: now.updatedAt.toISOString(),
            });
          }
        });
      }
      return () => {
        clearInterval(keepalive);
        unsubscribe?.();
      };
    });
  }
}

function snapshot(job: Job) {
  const dto = toJobDto(job);
  return {
    jobId: dto.id,
    state: dto.status,
    reason: dto.reason,
    progress: dto.progress,
    at: dto.updatedAt,
  };
}
