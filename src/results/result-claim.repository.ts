import { EntityRepository } from '@mikro-orm/postgresql';
import type { FilterQuery } from '@mikro-orm/core';
import type { ClaimState, ResultClaim } from './result-claim.entity';

/** Queries of claims: the admins' review queue. */
export class ResultClaimRepository extends EntityRepository<ResultClaim> {
  /** Claims in a state, oldest first (a review queue), after the keyset (createdAt, id). */
  page(state: ClaimState, limit: number, after?: { at: Date; id: string }): Promise<ResultClaim[]> {
    const where: FilterQuery<ResultClaim> = { state };
    if (after) {
      where.$or = [
        { createdAt: { $gt: after.at } },
        { createdAt: after.at, id: { $gt: after.id } },
      ];
    }
    return this.find(where, {
      orderBy: { createdAt: 'asc', id: 'asc' },
      limit,
      populate: ['result'],
    });
  }
}
