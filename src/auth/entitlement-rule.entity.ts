import { randomUUID } from 'node:crypto';
import { Entity, Enum, PrimaryKey, Property, Unique } from '@mikro-orm/core';

export enum RuleMatch {
  Exact = 'exact',
  Prefix = 'prefix',
}

export enum GrantedRole {
  Admin = 'admin',
  Operator = 'operator',
}

/** An admin-managed rule: users with a matching entitlement get a role. */
@Entity({ tableName: 'entitlement_rule' })
@Unique({ properties: ['entitlement', 'match', 'role'] })
export class EntitlementRule {
  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Property({ type: 'text' })
  entitlement!: string;

  @Enum({ items: () => RuleMatch })
  match!: RuleMatch;

  @Enum({ items: () => GrantedRole })
  role!: GrantedRole;

  @Property({ type: 'uuid', nullable: true })
  createdBy?: string;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  createdAt: Date = new Date();
}
