/**
 * Forwards a program's PROGRESS lines to labgate at most once per `everyMs` (2/s by default),
 * one request at a time: values that come faster are coalesced and the latest is sent when the
 * interval has passed, so a chatty program costs labgate nothing.
 */
export class ProgressReporter {
  private pending?: { percent: number; message?: string };
  private lastSentAt = -Infinity;
  private timer?: NodeJS.Timeout;
  private inFlight?: Promise<void>;
  private closed = false;

  constructor(
    private readonly send: (percent: number, message?: string) => Promise<void>,
    private readonly everyMs = 500,
    private readonly now: () => number = Date.now,
  ) {}

  report(percent: number, message?: string): void {
    if (this.closed) {
      return;
    }
    this.pending = { percent, message };
    this.pump();
  }

  /** Drops what is not sent yet and waits for the request in flight, if any. */
  async close(): Promise<void> {
    this.closed = true;
    this.pending = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }

  private pump(): void {
    if (!this.pending || this.inFlight || this.timer || this.closed) {
      return;
    }
    const wait = this.lastSentAt + this.everyMs - this.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, wait);
      return;
    }
    const { percent, message } = this.pending;
    this.pending = undefined;
    this.lastSentAt = this.now();
    this.inFlight = this.send(percent, message)
      .catch(() => undefined) // progress is best effort; the outcome is what counts
      .finally(() => {
        this.inFlight = undefined;
        this.pump();
      });
  }
}
