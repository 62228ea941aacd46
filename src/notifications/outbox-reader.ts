import type { JobEventData } from '../jobs/job-event.entity';
import type { NotificationEvent, NotificationMessage } from './channels/events';

export interface JobEventRow {
  id: string;
  job_id: string;
  at: Date;
  state: string;
  previous_state: string | null;
  reason: string | null;
  data: JobEventData | null;
}

export interface OutboxRow {
  id: string;
  at: Date;
  type: string;
  subject_type: string;
  subject_id: string;
  data: Record<string, unknown>;
}

/** Which job changes people hear of: submitted, started, and the three endings. */
function jobEvent(row: JobEventRow): NotificationEvent | undefined {
  if (row.state === 'queued' && row.previous_state === null) {
    return 'job.submitted';
  }
  if (row.state === 'running' && row.previous_state === 'assigned') {
    return 'job.started';
  }
  if (['succeeded', 'failed', 'cancelled'].includes(row.state)) {
    return `job.${row.state}` as NotificationEvent;
  }
  return undefined;
}

/** A job_event row as a notification to its owner (none for the changes nobody hears of). */
export function fromJobEvent(
  row: JobEventRow,
  publicUrl: string,
): { message: NotificationMessage; recipients: string[] } | undefined {
  const event = jobEvent(row);
  if (!event || !row.data?.ownerId) {
    return undefined;
  }
  const job = `${publicUrl}/api/v1/jobs/${row.job_id}`;
  return {
    recipients: [row.data.ownerId],
    message: {
      event,
      key: `job_event:${row.id}`,
      at: new Date(row.at).toISOString(),
      subject: { type: 'job', id: row.job_id },
      data: {
        service: row.data.service,
        status: row.state,
        reason: row.reason ?? undefined,
        metrics: row.data.metrics,
        deviceId: row.data.deviceId,
      },
      links: { job, result: event === 'job.succeeded' ? `${job}/result` : undefined },
    },
  };
}

/** An outbox_event row as a notification; who hears of it depends on its type. */
export function fromOutbox(
  row: OutboxRow,
  publicUrl: string,
): { message: NotificationMessage; audience: 'operators' | string[] } | undefined {
  const event = row.type as NotificationEvent;
  const base = {
    event,
    key: `outbox_event:${row.id}`,
    at: new Date(row.at).toISOString(),
    data: row.data,
  };
  switch (event) {
    case 'device.down':
    case 'device.up':
      return {
        audience: 'operators',
        message: {
          ...base,
          subject: { type: 'device', id: row.subject_id },
          links: { device: `${publicUrl}/api/v1/devices/${row.subject_id}` },
        },
      };
    case 'result.claimed':
    case 'claim.decided': {
      const resultId = (row.data.resultId as string | undefined) ?? row.subject_id;
      // The owner hears of a claim; the owner and the claimant of its decision.
      const people = [
        row.data.ownerId,
        event === 'claim.decided' ? row.data.claimantId : undefined,
      ].filter((id): id is string => typeof id === 'string');
      return {
        audience: [...new Set(people)],
        message: {
          ...base,
          subject: { type: row.subject_type === 'claim' ? 'claim' : 'result', id: row.subject_id },
          links: { result: `${publicUrl}/api/v1/results/${resultId}` },
        },
      };
    }
    default:
      return undefined;
  }
}
