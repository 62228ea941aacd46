import { StringDecoder } from 'node:string_decoder';

const PROGRESS_LINE = /^PROGRESS\s+(-?\d+(?:\.\d+)?)(?:\s+(.*?))?\s*$/;
/** A stdout line longer than this cannot be a progress line; its tail is not buffered. */
const MAX_PROGRESS_LINE = 4096;

/** Splits stdout into whole lines (across chunks) and reports the `PROGRESS n [message]` ones. */
export class ProgressLines {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  private overlong = false;

  constructor(private readonly onProgress?: (percent: number, message?: string) => void) {}

  push(chunk: Buffer): void {
    if (!this.onProgress) {
      return;
    }
    const lines = (this.partial + this.decoder.write(chunk)).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!this.overlong) {
        this.parse(line);
      }
      this.overlong = false;
    }
    if (this.partial.length > MAX_PROGRESS_LINE) {
      this.partial = '';
      this.overlong = true;
    }
  }

  end(): void {
    if (this.onProgress && !this.overlong) {
      this.parse(this.partial + this.decoder.end());
    }
  }

  private parse(line: string): void {
    const match = PROGRESS_LINE.exec(line);
    if (match) {
      const percent = Math.min(100, Math.max(0, Number(match[1])));
      this.onProgress?.(percent, match[2] || undefined);
    }
  }
}
