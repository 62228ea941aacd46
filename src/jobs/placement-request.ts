import { isUUID } from 'class-validator';
import type { FieldError } from '../common/problem';

/** Where and how urgently a submission asks to run: not service inputs, read off first. */
export interface PlacementRequest {
  /** A batch session: one job per device. */
  targets?: string[];
  priority?: number;
}

const MAX_TARGETS = 100;

function asList(raw: unknown): unknown[] | undefined {
  if (Array.isArray(raw)) {
    return raw as unknown[];
  }
  if (typeof raw === 'string') {
    // A form field: a JSON array, or ids separated by commas.
    const text = raw.trim();
    if (text.startsWith('[')) {
      try {
        const parsed: unknown = JSON.parse(text);
        return Array.isArray(parsed) ? parsed : undefined;
      } catch {
        return undefined;
      }
    }
    return text.split(',').map((s) => s.trim());
  }
  return undefined;
}

/** Takes `targets` and `priority` out of the submitted fields; the rest are service inputs. */
export function takePlacementRequest(fields: Record<string, unknown>): {
  inputs: Record<string, unknown>;
  request: PlacementRequest;
  errors: FieldError[];
} {
  const { targets, priority, ...inputs } = fields;
  const request: PlacementRequest = {};
  const errors: FieldError[] = [];
  if (targets !== undefined) {
    const list = asList(targets);
    if (!list || list.length === 0 || list.length > MAX_TARGETS) {
      errors.push({
        field: 'targets',
        message: `targets must be a list of 1 to ${MAX_TARGETS} device ids`,
      });
    } else {
      list.forEach((id, i) => {
        if (typeof id !== 'string' || !isUUID(id)) {
          errors.push({ field: `targets[${i}]`, message: 'must be a device id (UUID)' });
        }
      });
      if (new Set(list).size !== list.length) {
        errors.push({ field: 'targets', message: 'targets must not name a device twice' });
      }
      request.targets = list as string[];
    }
  }
  if (priority !== undefined) {
    const n = typeof priority === 'string' && priority.trim() !== '' ? Number(priority) : priority;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < -1000 || n > 1000) {
      errors.push({ field: 'priority', message: 'priority must be an integer from -1000 to 1000' });
    } else {
      request.priority = n;
    }
  }
  return { inputs, request, errors };
}
