import { createWriteStream, type WriteStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

/**
 * A job's log file: stdout and stderr chunks in arrival order until the cap, then one marker
 * line, then nothing. Memory stays bounded by the cap, so the pipes are never paused and the
 * program never blocks on a full pipe.
 */
export class CappedLog {
  bytes = 0;
  truncated = false;
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder() };

  private constructor(
    private readonly stream: WriteStream,
    private readonly cap: number,
    private readonly onLog?: (chunk: string) => void,
  ) {
    // A failing disk must not crash the worker; the run still completes, with a short log.
    stream.on('error', () => undefined);
  }

  /** Rejects when the file cannot be created: the worker's problem, not the program's. */
  static open(path: string, cap: number, onLog?: (chunk: string) => void): Promise<CappedLog> {
    return new Promise((resolve, reject) => {
      const stream = createWriteStream(path, { flags: 'w' });
      stream.once('error', reject);
      stream.once('open', () => {
        stream.off('error', reject);
        resolve(new CappedLog(stream, cap, onLog));
      });
    });
  }

  write(chunk: Buffer, from: 'stdout' | 'stderr'): void {
    if (this.truncated) {
      return;
    }
    let kept = chunk;
    if (this.bytes + chunk.length > this.cap) {
      let end = Math.max(0, this.cap - this.bytes);
      while (end > 0 && (chunk[end] & 0xc0) === 0x80) {
        end--; // do not cut a UTF-8 character in half
      }
      kept = chunk.subarray(0, end);
    }
    this.append(kept, this.decoders[from].write(kept));
    if (kept !== chunk) {
      this.truncated = true;
      const marker = `\n[labgate: log truncated at ${this.bytes} bytes]\n`;
      this.append(Buffer.from(marker), marker);
    }
  }

  /** Resolves once everything written is flushed and the file is closed. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.stream.closed) {
        resolve();
        return;
      }
      this.stream.once('close', () => resolve());
      this.stream.end();
    });
  }

  private append(bytes: Buffer, text: string): void {
    if (bytes.length === 0) {
      return;
    }
    this.stream.write(bytes);
    this.bytes += bytes.length;
    if (text) {
      this.onLog?.(text);
    }
  }
}
