import { GrantedRole, RuleMatch } from './entitlement-rule.entity';
import { effectiveRoles, RoleSources } from './roles';

const none: RoleSources = { adminEntitlements: [], operatorEntitlements: [], rules: [] };

describe(effectiveRoles.name, () => {
  it('makes nobody admin when nothing is configured', () => {
    expect(effectiveRoles(['urn:x:admin', 'anything'], none)).toEqual(['user']);
  });

  it('makes admin (and so operator) by a configured entitlement', () => {
    const roles = effectiveRoles(['urn:x:admin'], { ...none, adminEntitlements: ['urn:x:admin'] });
    expect(roles).toEqual(['user', 'operator', 'admin']);
  });

  it('makes operator, not admin, by an operator entitlement', () => {
    const roles = effectiveRoles(['urn:x:ops'], { ...none, operatorEntitlements: ['urn:x:ops'] });
    expect(roles).toEqual(['user', 'operator']);
  });

  it('matches an exact rule only exactly', () => {
    const sources = {
      ...none,
      rules: [{ entitlement: 'urn:x:g', match: RuleMatch.Exact, role: GrantedRole.Admin }],
    };
    expect(effectiveRoles(['urn:x:g'], sources)).toContain('admin');
    expect(effectiveRoles(['urn:x:g:sub'], sources)).not.toContain('admin');
  });

  it('matches a prefix rule by prefix', () => {
    const sources = {
      ...none,
      rules: [{ entitlement: 'urn:x:lab:', match: RuleMatch.Prefix, role: GrantedRole.Operator }],
    };
    expect(effectiveRoles(['urn:x:lab:cam'], sources)).toEqual(['user', 'operator']);
    expect(effectiveRoles(['urn:x:other'], sources)).toEqual(['user']);
  });

  it('does not let an operator rule grant admin', () => {
    const sources = {
      ...none,
      rules: [{ entitlement: 'urn:x', match: RuleMatch.Prefix, role: GrantedRole.Operator }],
    };
    expect(effectiveRoles(['urn:x:admin'], sources)).not.toContain('admin');
  });
});
