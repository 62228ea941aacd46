import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * The Prometheus registry of one app. Every labgate metric registers here, never in
 * prom-client's global registry: tests run several apps in one process, and each must count
 * only its own requests.
 */
@Injectable()
export class MetricsRegistry extends Registry {}

let processRegistry: Registry | undefined;

/**
 * Default Node.js metrics (CPU, memory, event loop, GC, handles). They describe the process,
 * not an app, so the process has one set, shared by its apps: each call of
 * `collectDefaultMetrics` starts another GC observer and event-loop monitor that never stop.
 */
export function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}
