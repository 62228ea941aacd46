import { SetMetadata } from '@nestjs/common';
import { normalizeIp } from '@nestjs/throttler';
import type { HttpSecurityConfig } from '../config';
import type { Principal } from './principal';

export const SKIP_RATE_LIMIT = 'labgate:skip-rate-limit';

/**
 * The route is outside the per-user and per-IP limits: health probes and Prometheus scrapes
 * must answer however busy the API is.
 */
export const SkipRateLimit = () => SetMetadata(SKIP_RATE_LIMIT, true);

/** The limits count requests per fixed minute. */
export const RATE_LIMIT_WINDOW_MS = 60_000;

/** Whose requests one request counts against, and how many that caller may make per minute. */
export interface RateLimitBucket {
  key: string;
  limit: number;
  /** For the 429 message. */
  who: string;
}

type Limits = Pick<HttpSecurityConfig, 'rateLimitUserPerMinute' | 'rateLimitIpPerMinute'>;

/**
 * Signed-in users count per user and devices per device, wherever they call from (one NAT may
 * hide a whole lab); calls without credentials count per client IP (an IPv6 client per /64,
 * which one machine usually holds whole). A limit of 0 is no limit.
 */
export function rateLimitBucket(
  principal: Principal | undefined,
  ip: string | undefined,
  limits: Limits,
): RateLimitBucket | undefined {
  if (principal) {
    const limit = limits.rateLimitUserPerMinute;
    if (limit <= 0) {
      return undefined;
    }
    return principal.kind === 'user'
      ? { key: `user:${principal.userId}`, limit, who: 'each user' }
      : { key: `device:${principal.deviceId}`, limit, who: 'each device' };
  }
  const limit = limits.rateLimitIpPerMinute;
  if (limit <= 0) {
    return undefined;
  }
  return { key: `ip:${normalizeIp(ip ?? '') || 'unknown'}`, limit, who: 'each address' };
}
