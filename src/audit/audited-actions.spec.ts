import {
  AUDIT_TARGETS,
  AUDITED_ACTION_NAMES,
  AUDITED_ACTION_PREFIXES,
  AUDITED_ACTIONS,
} from './audited-actions';
import type { AuditEntry } from './audit.service';

describe('audited actions', () => {
  it('are dotted lower-case names, each with a target and a sentence saying what it means', () => {
    for (const name of AUDITED_ACTION_NAMES) {
      expect(name).toMatch(/^[a-z_]+(\.[a-z_]+)+$/);
      expect(AUDIT_TARGETS).toContain(AUDITED_ACTIONS[name].target);
      expect(AUDITED_ACTIONS[name].description).toMatch(/^[A-Z].+\.$/);
    }
  });

  it('offer every family as a prefix filter, and nothing that is not one', () => {
    expect(AUDITED_ACTION_PREFIXES).toEqual(
      expect.arrayContaining(['auth.', 'device.', 'device_command.', 'result.', 'result.claim.']),
    );
    for (const prefix of AUDITED_ACTION_PREFIXES) {
      expect(prefix.endsWith('.')).toBe(true);
      expect(AUDITED_ACTION_NAMES.some((name) => name.startsWith(prefix))).toBe(true);
      expect(AUDITED_ACTION_NAMES).not.toContain(prefix);
    }
    // `device.` is not a prefix of `device_command.issue`.
    expect(AUDITED_ACTION_NAMES.filter((n) => n.startsWith('device.'))).not.toContain(
      'device_command.issue',
    );
  });

  it('pair each action with its own target type (checked by the compiler)', () => {
    const good: AuditEntry = { action: 'user.block', targetType: 'user', targetId: 'x' };
    // @ts-expect-error an undeclared action
    const unknown: AuditEntry = { action: 'user.delete', targetType: 'user' };
    // @ts-expect-error a declared action naming the wrong kind of object
    const mismatched: AuditEntry = { action: 'device.create', targetType: 'user' };
    expect([good, unknown, mismatched]).toHaveLength(3);
  });
});
