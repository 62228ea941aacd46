/**
 * Everything the audit log records, declared in one place: each action, the kind of object it
 * names and what it means. `AuditService.record()` and the `action` column accept these names
 * only, so a change cannot be audited without being declared (and documented) here; the admin
 * API lists them (`GET /api/v1/admin/audit/actions`, and the `action` filter's enum).
 */
export const AUDITED_ACTIONS = {
  'auth.login': { target: 'user', description: 'A user signed in through the browser.' },
  'user.block': {
    target: 'user',
    description: 'An admin blocked a user: their sessions and tokens stop working at once.',
  },
  'user.unblock': { target: 'user', description: 'An admin unblocked a user.' },
  'user.create': {
    target: 'user',
    description:
      'The CLI created a local account (token:create --create); SSO users are created by ' +
      'their first sign-in.',
  },
  'user.grant_admin': {
    target: 'user',
    description:
      'The CLI gave a local account the entitlement its admin rule matches (token:create --admin).',
  },
  'token.create': {
    target: 'personal_access_token',
    description: 'A user, or the CLI for a user, created a personal access token.',
  },
  'token.revoke': {
    target: 'personal_access_token',
    description: 'A user revoked one of their personal access tokens.',
  },
  'entitlement_rule.create': {
    target: 'entitlement_rule',
    description:
      'An admin (or the CLI, for token:create --admin) granted a role to users with a ' +
      'matching entitlement.',
  },
  'entitlement_rule.delete': {
    target: 'entitlement_rule',
    description: 'An admin removed an entitlement rule.',
  },
  'service.enable': { target: 'service', description: 'An admin enabled a compute service.' },
  'service.disable': { target: 'service', description: 'An admin disabled a compute service.' },
  'service.priority': {
    target: 'service',
    description: "An admin set the priority of a service's new jobs.",
  },
  'device.create': {
    target: 'device',
    description: 'An admin registered a device (or the CLI did: device:create).',
  },
  'device.update': { target: 'device', description: 'An admin changed a device.' },
  'device.delete': { target: 'device', description: 'An admin removed a device.' },
  'device.rotate_token': {
    target: 'device',
    description: "An admin replaced a device's token (the old one stops working).",
  },
  'device_command.issue': {
    target: 'device',
    description: 'An operator, an admin or labgate sent a command to a device.',
  },
  'device_command.acknowledged': {
    target: 'device_command',
    description: 'A device reported a command done.',
  },
  'device_command.failed': {
    target: 'device_command',
    description: 'A device reported a command failed.',
  },
  'job.submit': { target: 'job', description: 'A user submitted a job.' },
  'job.priority': { target: 'job', description: 'An admin changed the priority of a job.' },
  'job.queued': {
    target: 'job',
    description: 'A job went (back) to the queue: retried, or its device or worker was lost.',
  },
  'job.assigned': { target: 'job', description: 'The scheduler placed a job on a device.' },
  'job.running': { target: 'job', description: 'A job started running.' },
  'job.succeeded': { target: 'job', description: 'A job finished successfully.' },
  'job.failed': { target: 'job', description: 'A job failed.' },
  'job.cancelled': { target: 'job', description: 'A job was cancelled.' },
  'job.expired': { target: 'job', description: "Retention or the owner removed a job's files." },
  'webhook.create': { target: 'webhook', description: 'A user registered a webhook.' },
  'webhook.delete': { target: 'webhook', description: 'A user removed a webhook.' },
  'result.submit': { target: 'result', description: 'A user submitted a result run elsewhere.' },
  'result.create': { target: 'result', description: 'A succeeded job became a result.' },
  'result.tags': { target: 'result', description: "The owner or an admin set a result's tags." },
  'result.visibility': {
    target: 'result',
    description: "The owner or an admin changed a result's visibility.",
  },
  'result.claim': {
    target: 'result',
    description: 'A user claimed a result (it is hidden pending review).',
  },
  'result.claim.approve': {
    target: 'result',
    description: 'An admin approved a claim: the result is removed.',
  },
  'result.claim.reject': {
    target: 'result',
    description: 'An admin rejected a claim: the result is shown again.',
  },
  'database.migrate': {
    target: 'database',
    description:
      'The CLI applied pending database migrations (migrate), listed in details; processes ' +
      'that apply them at boot log them instead.',
  },
  'retention.run': {
    target: 'storage',
    description:
      'The CLI ran the retention pass (retention:run); each job it expired also has its ' +
      'job.expired row.',
  },
} as const satisfies Record<string, { target: string; description: string }>;

export type AuditedAction = keyof typeof AUDITED_ACTIONS;

/** The kind of object an action names (`audit_event.target_type`). */
export type AuditTarget = (typeof AUDITED_ACTIONS)[AuditedAction]['target'];

/** The target type each action must name, so that a caller cannot pair them wrongly. */
export type TargetOf<A extends AuditedAction> = (typeof AUDITED_ACTIONS)[A]['target'];

export const AUDITED_ACTION_NAMES = Object.keys(AUDITED_ACTIONS) as AuditedAction[];

export const AUDIT_TARGETS = [
  ...new Set(Object.values(AUDITED_ACTIONS).map((a) => a.target)),
] as AuditTarget[];

/**
 * Every family prefix of the declared actions, with its dot (`device.`, `result.claim.`), so
 * that a filter can ask for a whole family; an action's own name never ends with a dot.
 */
export const AUDITED_ACTION_PREFIXES: string[] = [
  ...new Set(
    AUDITED_ACTION_NAMES.flatMap((name) => {
      const parts = name.split('.');
      return parts.slice(1).map((_, i) => `${parts.slice(0, i + 1).join('.')}.`);
    }),
  ),
].sort();

/** The actions that name an object of this kind (for helpers that audit one kind of object). */
export type ActionOn<T extends AuditTarget> = {
  [A in AuditedAction]: TargetOf<A> extends T ? A : never;
}[AuditedAction];
