import { HttpStatus, Injectable, NotFoundException } from '@nestjs/common';
import { LockMode } from '@mikro-orm/core';
import { EntityManager, UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { AuditService } from '../audit/audit.service';
import { Outbox } from '../outbox/outbox.service';
import { User } from '../auth/user.entity';
import type { RequestOrigin } from '../common/auth.decorators';
import { decodeCursor, encodeCursor } from '../common/pagination';
import type { UserPrincipal } from '../common/principal';
import { ProblemException } from '../common/problem';
import type { ClaimDto, ClaimPageDto, ListClaimsQuery } from './dto/claim.dto';
import { readerOf } from './result-access';
import { ResultClaim } from './result-claim.entity';
import { toClaimDto } from './result.mapper';
import { Result } from './result.entity';
import { ResultsService } from './results.service';

const alreadyUnderReview = () =>
  new ProblemException(
    HttpStatus.CONFLICT,
    'This result already has a claim pending review; an admin will decide it.',
    { type: 'urn:labgate:problem:claim-pending' },
  );

/**
 * Moderation: anyone signed in who can see a result may claim it, which hides it pending
 * review; an admin approves (the result is removed) or rejects (it is published again).
 */
@Injectable()
export class ClaimsService {
  constructor(
    private readonly em: EntityManager,
    private readonly results: ResultsService,
    private readonly audit: AuditService,
    private readonly outbox: Outbox,
  ) {}

  async claim(
    resultId: string,
    reason: string,
    principal: UserPrincipal,
    origin: RequestOrigin,
  ): Promise<ClaimDto> {
    try {
      const claim = await this.em.fork().transactional(async (em) => {
        const result = await this.results.visible(
          em,
          resultId,
          readerOf(principal),
          LockMode.PESSIMISTIC_WRITE,
        );
        if (result.status === 'under_review') {
          throw alreadyUnderReview();
        }
        if (result.status === 'removed') {
          throw new ProblemException(HttpStatus.CONFLICT, 'This result has been removed already.');
        }
        const now = new Date();
        const claim = em.create(ResultClaim, {
          result,
          claimant: em.getReference(User, principal.userId),
          reason,
          state: 'pending',
          createdAt: now,
        });
        result.status = 'under_review';
        result.updatedAt = now;
        this.outbox.record(em, {
          type: 'result.claimed',
          subjectType: 'result',
          subjectId: resultId,
          data: {
            resultId,
            ownerId: result.owner.id,
            claimantId: principal.userId,
            claimant: principal.name ?? principal.email,
            service: result.service,
            reason,
          },
        });
        this.audit.record(
          {
            actor: principal,
            action: 'result.claim',
            targetType: 'result',
            targetId: resultId,
            origin,
            details: { claimId: claim.id, reason },
          },
          em,
        );
        return claim;
      });
      return toClaimDto(claim, false);
    } catch (err) {
      // Two claims at once: the partial unique index lets one be pending.
      if (err instanceof UniqueConstraintViolationException) {
        throw alreadyUnderReview();
      }
      throw err;
    }
  }

  async list(query: ListClaimsQuery): Promise<ClaimPageDto> {
    const after = query.cursor ? decodeCursor(query.cursor) : undefined;
    const claims = await this.em
      .getRepository(ResultClaim)
      .page(query.state, query.limit + 1, after);
    const page = claims.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((c) => toClaimDto(c, true)),
      nextCursor:
        claims.length > query.limit && last ? encodeCursor(last.createdAt, last.id) : undefined,
    };
  }

  /** Approve: the result is removed. Reject: it is published again. Pending claims only. */
  async decide(
    claimId: string,
    approve: boolean,
    admin: UserPrincipal,
    origin: RequestOrigin,
    note?: string,
  ): Promise<ClaimDto> {
    const claim = await this.em.fork().transactional(async (em) => {
      const claim = await em.findOne(ResultClaim, claimId, {
        lockMode: LockMode.PESSIMISTIC_WRITE,
      });
      if (!claim) {
        throw new NotFoundException(`There is no claim ${claimId}.`);
      }
      if (claim.state !== 'pending') {
        throw new ProblemException(
          HttpStatus.CONFLICT,
          `The claim was ${claim.state} already; only pending claims are decided.`,
          { type: 'urn:labgate:problem:claim-decided' },
        );
      }
      const result = await em.findOneOrFail(Result, claim.result.id, {
        lockMode: LockMode.PESSIMISTIC_WRITE,
      });
      const now = new Date();
      claim.state = approve ? 'approved' : 'rejected';
      claim.decidedAt = now;
      claim.decidedBy = admin.userId;
      claim.decisionNote = note;
      const before = result.status;
      result.status = approve ? 'removed' : 'published';
      result.updatedAt = now;
      this.outbox.record(em, {
        type: 'claim.decided',
        subjectType: 'claim',
        subjectId: claim.id,
        data: {
          resultId: result.id,
          ownerId: result.owner.id,
          claimantId: claim.claimant.id,
          service: result.service,
          decision: claim.state,
          comment: note,
        },
      });
      this.audit.record(
        {
          actor: admin,
          action: approve ? 'result.claim.approve' : 'result.claim.reject',
          targetType: 'result',
          targetId: result.id,
          origin,
          details: { claimId, note, before, after: result.status },
        },
        em,
      );
      return claim;
    });
    return toClaimDto(claim, true);
  }
}
