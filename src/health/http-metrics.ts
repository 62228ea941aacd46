import { Injectable } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { Histogram } from 'prom-client';
import { MetricsRegistry } from './metrics.registry';

/** Label of every request no route matched (unknown paths, static files, CORS preflights). */
export const UNMATCHED_ROUTE = 'unmatched';

/** Status label of a request whose client went away before an answer was sent (nginx's 499). */
export const CLIENT_CLOSED = '499';

/**
 * The route template a request matched (`/api/v1/jobs/:id`), never its URL: ids in labels
 * would make a new time series per job and exhaust Prometheus.
 */
export function routeLabel(req: Pick<Request, 'route'>): string {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' && path !== '' ? path : UNMATCHED_ROUTE;
}

export function statusLabel(res: Pick<Response, 'headersSent' | 'statusCode'>): string {
  return res.headersSent ? String(res.statusCode) : CLIENT_CLOSED;
}

/** Request latency by method, route template and status, measured by Express middleware. */
@Injectable()
export class HttpMetrics {
  private readonly duration: Histogram<'method' | 'route' | 'status_code'>;

  constructor(registry: MetricsRegistry) {
    this.duration = new Histogram({
      name: 'labgate_http_request_duration_seconds',
      help: 'Time from receiving an HTTP request to the end of its answer, by route template and status.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
  }

  /**
   * Mounted before everything else (bootstrap), so that answers given before routing (a body
   * too large, a CORS preflight, an unknown path) are measured too. The route is read when the
   * answer ends: Express sets it only once a route matched.
   */
  middleware() {
    return (req: Request, res: Response, next: NextFunction) => {
      const start = process.hrtime.bigint();
      res.once('close', () => {
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        this.duration.observe(
          { method: req.method, route: routeLabel(req), status_code: statusLabel(res) },
          seconds,
        );
      });
      next();
    };
  }
}
