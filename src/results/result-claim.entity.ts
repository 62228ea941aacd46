import { randomUUID } from 'node:crypto';
import {
  Entity,
  EntityRepositoryType,
  Enum,
  Index,
  ManyToOne,
  PrimaryKey,
  Property,
  Unique,
} from '@mikro-orm/core';
import { User } from '../auth/user.entity';
import { ResultClaimRepository } from './result-claim.repository';
import { Result } from './result.entity';

export const CLAIM_STATES = ['pending', 'approved', 'rejected'] as const;
export type ClaimState = (typeof CLAIM_STATES)[number];

/**
 * Someone says a result should not be there (wrong, duplicated, not theirs to publish). While
 * pending, the result is under review; an admin approves (the result is removed) or rejects
 * (it is published again). A result has at most one pending claim (partial unique index).
 */
@Entity({ tableName: 'result_claim', repository: () => ResultClaimRepository })
@Index({ properties: ['state', 'createdAt', 'id'] })
@Index({ properties: ['result'] })
@Unique({
  name: 'result_claim_one_pending',
  expression:
    'create unique index "result_claim_one_pending" on "result_claim" ("result_id") where "state" = \'pending\'',
})
export class ResultClaim {
  [EntityRepositoryType]?: ResultClaimRepository;

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @ManyToOne(() => Result, { deleteRule: 'cascade' })
  result!: Result;

  @ManyToOne(() => User, { deleteRule: 'cascade' })
  claimant!: User;

  @Property({ type: 'text' })
  reason!: string;

  @Enum({ items: () => [...CLAIM_STATES] })
  state: ClaimState = 'pending';

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  decidedAt?: Date;

  /** The admin who decided; kept as an id (the audit log has the rest). */
  @Property({ type: 'uuid', nullable: true })
  decidedBy?: string;

  @Property({ type: 'text', nullable: true })
  decisionNote?: string;
}
