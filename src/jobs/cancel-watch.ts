import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@nestjs/common';
import type { JobEventsBus, JobUpdate } from './job-events.bus';

/** How long a run's start waits for its cancel subscription before going on without it. */
const SUBSCRIBE_WAIT_MS = 2_000;
/** How often PostgreSQL is asked while the subscription is missing (and it is tried again). */
const POLL_MS = 5_000;
/** How often it is asked anyway: a cancel whose publisher lost Redis never arrives. */
const RECHECK_MS = 30_000;

export interface CancelWatch {
  /** Aborted once the run is cancelled. */
  signal: AbortSignal;
  /** The run is over: no more subscription, polls or checks. */
  stop(): void;
}

export interface CancelWatchOptions {
  jobId: string;
  /** The placement this run belongs to: a cancel naming another one is not for it. */
  assignment: number;
  bus: JobEventsBus;
  /** Whether PostgreSQL still has the job running this placement (rejects when it cannot tell). */
  stillRunning(): Promise<boolean>;
  logger: Logger;
}

/**
 * Tells a run when its job is cancelled: a `cancel` over Redis from the API (or the CLI), or
 * PostgreSQL no longer having the job running this placement. PostgreSQL is asked once the
 * subscription holds (a cancel may have come before it), and again after the bus got Redis back
 * (messages sent while it was away are lost), and every half minute in any case. Redis away as
 * the run starts must not cost the attempt: the run goes on without the subscription, asking
 * PostgreSQL every few seconds and subscribing again, until the subscription holds.
 */
export async function watchCancel(options: CancelWatchOptions): Promise<CancelWatch> {
  const { jobId, assignment, bus, logger } = options;
  const abort = new AbortController();
  let ended = false;
  let unsubscribe: (() => void) | undefined;
  let subscribing: Promise<boolean> | undefined;
  let poll: NodeJS.Timeout | undefined;

  const check = async () => {
    try {
      if (!ended && !(await options.stillRunning())) {
        abort.abort();
      }
    } catch {
      // The database is away too: the next poll or reconnect asks again.
    }
  };
  const onUpdate = (update: JobUpdate) => {
    if (update.type === 'cancel' && (update.assignment ?? assignment) === assignment) {
      abort.abort();
    }
  };
  const subscribe = (): Promise<boolean> => {
    subscribing ??= bus.subscribe(jobId, onUpdate).then(
      (stop) => {
        subscribing = undefined;
        if (ended) {
          stop();
        } else {
          unsubscribe = stop;
          if (poll) {
            clearInterval(poll);
            poll = undefined;
            void check();
          }
        }
        return true;
      },
      (err: Error) => {
        subscribing = undefined;
        if (!ended) {
          logger.warn(`job ${jobId}: no live cancel yet (${err.message}); asking PostgreSQL`);
        }
        return false;
      },
    );
    return subscribing;
  };

  const stopReconnects = bus.onReconnect(() => void check());
  const recheck = setInterval(() => void check(), RECHECK_MS);
  recheck.unref();
  const inTime = await Promise.race([subscribe(), sleep(SUBSCRIBE_WAIT_MS, false, { ref: false })]);
  if (!inTime) {
    poll = setInterval(() => {
      void check();
      void subscribe();
    }, POLL_MS);
    poll.unref();
  }
  await check();
  return {
    signal: abort.signal,
    stop: () => {
      ended = true;
      clearInterval(poll);
      clearInterval(recheck);
      stopReconnects();
      unsubscribe?.();
    },
  };
}
