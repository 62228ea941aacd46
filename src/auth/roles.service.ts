import { Injectable } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import type { Role } from '../common/principal';
import { AppConfig } from '../config';
import { EntitlementRule } from './entitlement-rule.entity';
import { effectiveRoles, type RoleSources } from './roles';

@Injectable()
export class RolesService {
  constructor(
    private readonly em: EntityManager,
    private readonly config: AppConfig,
  ) {}

  /**
   * Rules are read at every check, so that an admin's change applies to the next request;
   * `rules` are ones the caller read itself (with a bearer user's row, kept on the
   * ChangeFeed's word: SignedInUsers).
   */
  async rolesFor(entitlements: string[], rules?: RoleSources['rules']): Promise<Role[]> {
    if (rules) {
      return effectiveRoles(entitlements, this.sources(rules));
    }
    const [roles] = await this.rolesOfEach([entitlements]);
    return roles;
  }

  /** The roles of many users (one per entitlement list) with one read of the rules. */
  async rolesOfEach(entitlementLists: string[][]): Promise<Role[][]> {
    const rules = entitlementLists.some((entitlements) => entitlements.length)
      ? await this.em.fork().find(EntitlementRule, {}, { fields: ['entitlement', 'match', 'role'] })
      : [];
    const sources = this.sources(rules);
    return entitlementLists.map((entitlements) => effectiveRoles(entitlements, sources));
  }

  private sources(rules: RoleSources['rules']): RoleSources {
    return {
      adminEntitlements: this.config.auth.adminEntitlements,
      operatorEntitlements: this.config.auth.operatorEntitlements,
      rules,
    };
  }
}
