import { createHash, timingSafeEqual } from 'node:crypto';
import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AppConfig } from '../config';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * Compares in constant time: both sides are hashed first, so that neither the position of the
 * first differing byte nor the token's length shows in the answer time.
 */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) {
    return false;
  }
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** With METRICS_TOKEN set, `/metrics` needs `Authorization: Bearer <that token>`; else open. */
@Injectable()
export class MetricsTokenGuard implements CanActivate {
  constructor(private readonly config: AppConfig) {}

  canActivate(context: ExecutionContext): boolean {
    const expected = this.config.http.metricsToken;
    if (!expected) {
      return true;
    }
    const http = context.switchToHttp();
    const given = BEARER.exec(http.getRequest<Request>().headers.authorization ?? '')?.[1];
    if (!tokenMatches(given, expected)) {
      http.getResponse<Response>().setHeader('WWW-Authenticate', 'Bearer realm="labgate-metrics"');
      throw new UnauthorizedException(
        given === undefined
          ? 'Metrics need Authorization: Bearer <METRICS_TOKEN>.'
          : 'That is not the metrics token (METRICS_TOKEN).',
      );
    }
    return true;
  }
}
