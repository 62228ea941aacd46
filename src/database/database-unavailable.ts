/**
 * Errors that say PostgreSQL is not there right now (stopped, restarting, unreachable, out of
 * connections), as opposed to a query that is wrong. The caller did nothing wrong and the same
 * request will work once the server is back: an API answers 503, a worker waits and tries again.
 */
const UNAVAILABLE_CODES = new Set([
  // The socket: nothing listens, the connection dropped, or the host is unreachable.
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  // SQLSTATE: admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections.
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

/**
 * What pg and the pool say when a connection breaks or cannot be had (they set no code), and
 * what knex says to every statement of a transaction whose BEGIN met a broken connection: it
 * hands the callback a transaction it has already closed, and the BEGIN's own error goes
 * elsewhere (its `executionPromise`), so this message is all a request sees.
 */
const UNAVAILABLE_MESSAGE = new RegExp(
  [
    'Connection terminated',
    'connection error',
    'timeout exceeded when trying to connect',
    'Timeout acquiring a connection',
    'Transaction query already complete',
  ].join('|'),
  'i',
);

export function isDatabaseUnavailable(err: unknown): boolean {
  // MikroORM wraps the driver's error (copying its code); pg may keep the cause further down.
  for (let e = err, depth = 0; e instanceof Error && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (
      typeof code === 'string' &&
      (UNAVAILABLE_CODES.has(code) ||
        // SQLSTATE class 08: connection; but 08P01 (protocol violation) is what PostgreSQL
        // answers a statement with a NUL in it: the request's fault, not an outage.
        (code.startsWith('08') && code !== '08P01'))
    ) {
      return true;
    }
    if (e.name === 'KnexTimeoutError' || UNAVAILABLE_MESSAGE.test(e.message)) {
      return true;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Runs `work`, and runs it again while it fails because PostgreSQL is unavailable (backing off
 * from 250 ms to 5 s), for up to `maxWaitMs`. For background work that must not drop what it
 * has to record (a worker concluding a job it ran), never for a request someone waits on.
 * `work` must be safe to repeat: a job transition is (it is guarded by the state it saw).
 */
export async function whenDatabaseIsBack<T>(
  work: () => Promise<T>,
  onWait: (err: Error) => void,
  maxWaitMs = 5 * 60_000,
): Promise<T> {
  const deadline = Date.now() + maxWaitMs;
  for (let delay = 250, warned = false; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      return await work();
    } catch (err) {
      if (!isDatabaseUnavailable(err) || Date.now() + delay > deadline) {
        throw err;
      }
      if (!warned) {
        warned = true;
        onWait(err as Error);
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
