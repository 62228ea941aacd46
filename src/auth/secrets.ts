import { createHash, randomBytes } from 'node:crypto';

/** A random credential with a recognisable prefix (`lgp_`, `lgd_`, …): 256 bits of entropy. */
export function newSecret(prefix: string): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

/**
 * Credentials are high-entropy random strings, so a plain SHA-256 is enough to store them
 * (no salt or slow hash needed: there is nothing to guess).
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
