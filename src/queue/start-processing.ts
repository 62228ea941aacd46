import type { Job, Queue } from 'bull';
import type Redis from 'ioredis';

/**
 * `queue.process()` with its connections ready first. Bull names the blocking connection in a
 * promise it never returns (setWorkerName); when a queue closes while that is under way (an
 * app stopped right after boot) the rejection escapes as an unhandled one. Waiting for both
 * connections, then for a round trip on the blocking one (after the name was set), leaves
 * nothing in flight; close the queue only after the returned promise settles.
 */
export async function startProcessing<T>(
  queue: Queue,
  name: string,
  concurrency: number,
  handler: (job: Job<T>) => Promise<unknown>,
): Promise<void> {
  await queue.isReady();
  const blocking = (queue as unknown as { bclient: Redis }).bclient;
  if (blocking.status !== 'ready') {
    await new Promise<void>((resolve, reject) => {
      blocking.once('ready', () => resolve());
      blocking.once('end', () => reject(new Error('the queue closed while starting')));
    });
  }
  void (queue as Queue<T>).process(name, concurrency, handler).catch(() => {});
  await blocking.client('GETNAME');
}

/** Waits for a start at shutdown, but not for ever: with Redis away it never settles. */
export async function startedOrGone(started: Promise<void> | undefined, ms = 2_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    started,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
