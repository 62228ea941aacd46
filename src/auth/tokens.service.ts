import { HttpStatus, Injectable, NotFoundException } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { AuditService } from '../audit/audit.service';
import type { RequestOrigin } from '../common/auth.decorators';
import type { Principal, UserPrincipal } from '../common/principal';
import { ProblemException } from '../common/problem';
import { CreatedTokenDto, CreateTokenDto, TokenDto } from './dto/token.dto';
import { PersonalAccessToken } from './personal-access-token.entity';
import { hashSecret, newSecret } from './secrets';
import { User } from './user.entity';

export const PAT_PREFIX = 'lgp_';
const MAX_LIFETIME_MS = 366 * 24 * 3600_000;

@Injectable()
export class TokensService {
  constructor(
    private readonly em: EntityManager,
    private readonly audit: AuditService,
  ) {}

  /**
   * A token for the user `ownerId`. `actor` is who asks, recorded in the audit row: the owner
   * over the API, none (labgate itself) for the CLI, which creates tokens for others.
   */
  async create(
    actor: Principal | undefined,
    ownerId: string,
    dto: CreateTokenDto,
    origin: RequestOrigin,
  ) {
    if (actor?.kind === 'user' && actor.via === 'pat') {
      throw new ProblemException(
        HttpStatus.FORBIDDEN,
        'A personal access token cannot create tokens; sign in or use an OIDC bearer token.',
      );
    }
    if (dto.expiresAt.getTime() - Date.now() > MAX_LIFETIME_MS) {
      throw new ProblemException(HttpStatus.BAD_REQUEST, 'expiresAt is more than a year ahead.', {
        errors: [{ field: 'expiresAt', message: 'expiresAt must be at most one year ahead' }],
      });
    }
    const secret = newSecret(PAT_PREFIX);
    const token = await this.em.transactional((em) => {
      const created = em.create(PersonalAccessToken, {
        user: em.getReference(User, ownerId),
        name: dto.name,
        secretHash: hashSecret(secret),
        hint: secret.slice(0, PAT_PREFIX.length + 4),
        scopes: dto.scopes,
        expiresAt: dto.expiresAt,
        createdAt: new Date(),
      });
      this.audit.record(
        {
          actor,
          action: 'token.create',
          targetType: 'personal_access_token',
          targetId: created.id,
          origin,
          details: {
            name: dto.name,
            scopes: dto.scopes,
            expiresAt: dto.expiresAt,
            // Whose token, when it is not the actor's own.
            ...(actor?.kind === 'user' && actor.userId === ownerId ? {} : { owner: ownerId }),
          },
        },
        em,
      );
      return created;
    });
    return { ...toDto(token), token: secret } satisfies CreatedTokenDto;
  }

  async list(owner: UserPrincipal): Promise<TokenDto[]> {
    const tokens = await this.em.find(
      PersonalAccessToken,
      { user: owner.userId },
      { orderBy: { createdAt: 'desc', id: 'desc' } },
    );
    return tokens.map(toDto);
  }

  async revoke(owner: UserPrincipal, id: string, origin: RequestOrigin): Promise<void> {
    await this.em.transactional(async (em) => {
      const token = await em.findOne(PersonalAccessToken, { id, user: owner.userId });
      if (!token) {
        throw new NotFoundException(`You have no token ${id}.`);
      }
      token.revokedAt ??= new Date();
      this.audit.record(
        {
          actor: owner,
          action: 'token.revoke',
          targetType: 'personal_access_token',
          targetId: id,
          origin,
        },
        em,
      );
    });
  }

  /** The live token for a secret, with its user; undefined if unknown, revoked or expired. */
  async find(secret: string): Promise<PersonalAccessToken | undefined> {
    const em = this.em.fork();
    const token = await em.findOne(
      PersonalAccessToken,
      { secretHash: hashSecret(secret), revokedAt: null, expiresAt: { $gt: new Date() } },
      { populate: ['user'] },
    );
    if (!token) {
      return undefined;
    }
    // Coarse on purpose: one write a minute per token at most. Using a token counts as its
    // owner signing in (lastLoginAt), as an OIDC bearer token does; a refused one does not.
    if (!token.lastUsedAt || Date.now() - token.lastUsedAt.getTime() > 60_000) {
      const now = new Date();
      await em.nativeUpdate(PersonalAccessToken, token.id, { lastUsedAt: now });
      if (!token.user.blocked) {
        await em.nativeUpdate(User, token.user.id, { lastLoginAt: now });
      }
    }
    return token;
  }
}

function toDto(token: PersonalAccessToken): TokenDto {
  return {
    id: token.id,
    name: token.name,
    hint: token.hint,
    scopes: token.scopes,
    expiresAt: token.expiresAt,
    createdAt: token.createdAt,
    lastUsedAt: token.lastUsedAt,
    revokedAt: token.revokedAt,
  };
}
