/**
 * A tar.gz payload was refused; nothing of it was kept. `status` is 400 (not a valid or safe
 * payload) or 413 (over a size or count limit), and the message names the offending entry so
 * that the sender can fix the archive. The global problem filter answers it with that status.
 */
export class PayloadError extends Error {
  constructor(
    readonly status: 400 | 413,
    message: string,
    /** The archive entry at fault, when there is one. */
    readonly entry?: string,
  ) {
    super(message);
    this.name = 'PayloadError';
  }
}
