import { Injectable } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { Observable } from 'rxjs';
import { JobEventsBus, JobUpdate } from './job-events.bus';
import { isFinal } from './job-state';
import { Job } from './job.entity';
import { toJobDto, type JobView } from './job.mapper';

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

  events(job: JobView): Observable<MessageEvent> {
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
      /**
       * What PostgreSQL says, when a message may have been missed: between the first read and
       * the subscription, while Redis was away (the bus reconnected), or ever (each keepalive).
       * Never rejects: the database may be away too, and the next check comes.
       */
      const recheck = async () => {
        const now = await this.em
          .fork()
          .findOne(Job, job.id)
          .catch(() => null);
        if (now && now.state !== lastState && !subscriber.closed) {
          onUpdate({
            type: 'state',
            jobId: job.id,
            state: now.state,
            reason: now.reason,
            at: now.updatedAt.toISOString(),
          });
        }
      };
      const keepalive = setInterval(() => {
        send('ping', {});
        void recheck();
      }, KEEPALIVE_MS);
      send('state', { type: 'state', ...snapshot(job) });
      let stopReconnects: (() => void) | undefined;
      if (isFinal(job.state)) {
        subscriber.complete();
      } else {
        stopReconnects = this.bus.onReconnect(() => void recheck());
        this.bus.subscribe(job.id, onUpdate).then(
          async (stop) => {
            unsubscribe = stop;
            if (subscriber.closed) {
              stop();
              return;
            }
            await recheck();
          },
          // Redis away: no live updates for this stream, the rechecks still end it.
          () => undefined,
        );
      }
      return () => {
        clearInterval(keepalive);
        stopReconnects?.();
        unsubscribe?.();
      };
    });
  }
}

function snapshot(job: JobView) {
  const dto = toJobDto(job);
  return {
    jobId: dto.id,
    state: dto.status,
    reason: dto.reason,
    progress: dto.progress,
    at: dto.updatedAt,
  };
}
