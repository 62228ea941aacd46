import type { Role } from '../common/principal';
import { EntitlementRule, GrantedRole, RuleMatch } from './entitlement-rule.entity';

export interface RoleSources {
  adminEntitlements: string[];
  operatorEntitlements: string[];
  rules: Pick<EntitlementRule, 'entitlement' | 'match' | 'role'>[];
}

function ruleMatches(rule: RoleSources['rules'][number], entitlement: string): boolean {
  return rule.match === RuleMatch.Exact
    ? entitlement === rule.entitlement
    : entitlement.startsWith(rule.entitlement);
}

/**
 * Effective roles of a user with these entitlements. Every signed-in user is `user`; admin
 * comes only from ADMIN_ENTITLEMENTS or an admin rule (nothing configured: nobody is admin).
 * Admins can do whatever operators can.
 */
export function effectiveRoles(entitlements: string[], sources: RoleSources): Role[] {
  const granted = (role: GrantedRole, configured: string[]) =>
    entitlements.some(
      (e) =>
        configured.includes(e) ||
        sources.rules.some((rule) => rule.role === role && ruleMatches(rule, e)),
    );
  const admin = granted(GrantedRole.Admin, sources.adminEntitlements);
  const operator = admin || granted(GrantedRole.Operator, sources.operatorEntitlements);
  return [
    'user',
    ...(operator ? (['operator'] as const) : []),
    ...(admin ? (['admin'] as const) : []),
  ];
}
