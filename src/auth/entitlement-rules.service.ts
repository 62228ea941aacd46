import { ConflictException, Injectable, NotFoundException } from '@nestjs/common';
import { EntityManager, UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { AuditService } from '../audit/audit.service';
import type { RequestOrigin } from '../common/auth.decorators';
import type { UserPrincipal as Principal } from '../common/principal';
import { CreateEntitlementRuleDto, EntitlementRuleDto } from './dto/entitlement-rule.dto';
import { rulesChanged } from './signed-in-users';
import { EntitlementRule } from './entitlement-rule.entity';

@Injectable()
export class EntitlementRulesService {
  constructor(
    private readonly em: EntityManager,
    private readonly audit: AuditService,
  ) {}

  async list(): Promise<EntitlementRuleDto[]> {
    const rules = await this.em.find(
      EntitlementRule,
      {},
      { orderBy: { createdAt: 'asc', id: 'asc' } },
    );
    return rules.map(toDto);
  }

  async create(
    actor: Principal,
    dto: CreateEntitlementRuleDto,
    origin: RequestOrigin,
  ): Promise<EntitlementRuleDto> {
    try {
      const rule = await this.em.transactional((em) => {
        const created = em.create(EntitlementRule, {
          ...dto,
          createdBy: actor.userId,
          createdAt: new Date(),
        });
        this.audit.record(
          {
            actor,
            action: 'entitlement_rule.create',
            targetType: 'entitlement_rule',
            targetId: created.id,
            origin,
            details: { ...dto },
          },
          em,
        );
        return created;
      });
      rulesChanged();
      return toDto(rule);
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) {
        throw new ConflictException('The same rule exists already.');
      }
      throw err;
    }
  }

  async remove(actor: Principal, id: string, origin: RequestOrigin): Promise<void> {
    await this.em.transactional(async (em) => {
      const rule = await em.findOne(EntitlementRule, id);
      if (!rule) {
        throw new NotFoundException(`There is no entitlement rule ${id}.`);
      }
      em.remove(rule);
      this.audit.record(
        {
          actor,
          action: 'entitlement_rule.delete',
          targetType: 'entitlement_rule',
          targetId: id,
          origin,
          details: { entitlement: rule.entitlement, match: rule.match, role: rule.role },
        },
        em,
      );
    });
    rulesChanged();
  }
}

function toDto(rule: EntitlementRule): EntitlementRuleDto {
  return {
    id: rule.id,
    entitlement: rule.entitlement,
    match: rule.match,
    role: rule.role,
    createdBy: rule.createdBy,
    createdAt: rule.createdAt,
  };
}
