/** A step that has not finished by then is given up on, so that the later ones still run. */
const STEP_TIMEOUT_MS = 20_000;

/**
 * What a bench started, undone in reverse order: on success, on failure, and on Ctrl-C or
 * SIGTERM (a second signal exits at once). Every step runs even when an earlier one fails or
 * hangs. After a signal, `check()` throws, so that loops stop starting new work.
 */
export class Cleanup {
  private readonly steps: Array<{ what: string; undo: () => unknown }> = [];
  private signalled = false;
  private draining: Promise<void> = Promise.resolve();

  constructor() {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.on(signal, () => {
        if (this.signalled) {
          process.exit(130);
        }
        this.signalled = true;
        process.stderr.write(`\n${signal}: cleaning up (again to exit at once)\n`);
        void this.run().finally(() => process.exit(130));
      });
    }
  }

  add(what: string, undo: () => unknown): void {
    this.steps.push({ what, undo });
  }

  /** Throws once a signal has asked the bench to stop. */
  check(): void {
    if (this.signalled) {
      throw new Error('interrupted');
    }
  }

  /**
   * Undoes every step added so far, newest first; later steps can be added and run again.
   * A second caller (the failing main flow, while a signal is being handled) waits for the
   * same work instead of returning, and exiting, before it is done.
   */
  run(): Promise<void> {
    this.draining = this.draining.then(() => this.drain());
    return this.draining;
  }

  private async drain(): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      if (this.signalled) {
        process.stderr.write(`cleanup: ${step.what}\n`);
      }
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.resolve().then(step.undo),
          new Promise((_resolve, reject) => {
            timer = setTimeout(
              () => reject(new Error(`no end after ${STEP_TIMEOUT_MS} ms; going on`)),
              STEP_TIMEOUT_MS,
            );
          }),
        ]);
      } catch (err) {
        process.stderr.write(`cleanup: ${step.what} failed: ${(err as Error).message}\n`);
      } finally {
        clearTimeout(timer);
      }
    }
  }
}

/** Runs `count` tasks with at most `concurrency` in flight; rejects on the first failure. */
export async function inPool(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) {
      await task(next++);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
