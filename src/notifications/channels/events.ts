/**
 * The events users and webhooks can subscribe to. Stored in preferences and webhook rows, so a
 * name here is part of the public contract: add names, never rename one.
 */
export const NOTIFICATION_EVENTS = [
  'job.submitted',
  'job.started',
  'job.succeeded',
  'job.failed',
  'job.cancelled',
  'device.down',
  'device.up',
  'result.claimed',
  'claim.decided',
] as const;

export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number];

export function isNotificationEvent(value: unknown): value is NotificationEvent {
  return typeof value === 'string' && (NOTIFICATION_EVENTS as readonly string[]).includes(value);
}

export type NotificationSubjectType = 'job' | 'device' | 'result' | 'claim';

/**
 * One occurrence of an event, as every channel sees it: rendered into mail, posted as the
 * webhook body, stored as an in-app notification.
 */
export interface NotificationMessage {
  event: NotificationEvent;
  /** Unique per event occurrence (e.g. `job_event:123`): deliveries de-duplicate on it. */
  key: string;
  /** ISO-8601 UTC time of the occurrence. */
  at: string;
  subject: { type: NotificationSubjectType; id: string };
  /** Event details, e.g. service, status, reason, deviceName, metrics, decision. */
  data: Record<string, unknown>;
  /** Absolute URLs. */
  links: { job?: string; result?: string; device?: string };
}
