import { HttpStatus, Injectable, NotFoundException } from '@nestjs/common';
import { LockMode, type FilterQuery } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import { AuditService } from '../audit/audit.service';
import { RolesService } from '../auth/roles.service';
import { User } from '../auth/user.entity';
import type { RequestOrigin } from '../common/auth.decorators';
import { decodeCursor, encodeCursor } from '../common/pagination';
import type { Role, UserPrincipal } from '../common/principal';
import { ProblemException } from '../common/problem';
import { usersChanged } from '../auth/signed-in-users';
import { AdminUserDto, AdminUserPageDto, ListUsersQuery } from './dto/user.dto';

/** Rows read per round when filtering by role, which is computed, not stored. */
const ROLE_SCAN_BATCH = 500;

/** The users known to labgate, for admins: search, roles, blocking. */
@Injectable()
export class AdminUsersService {
  constructor(
    private readonly em: EntityManager,
    private readonly roles: RolesService,
    private readonly audit: AuditService,
  ) {}

  /**
   * Newest first. Roles come from the auth module's rules (RolesService), so a role filter is
   * applied to computed roles: rows are scanned in keyset order until the page is full.
   */
  async list(query: ListUsersQuery): Promise<AdminUserPageDto> {
    let after = query.cursor ? decodeCursor(query.cursor) : undefined;
    const batch = query.role ? ROLE_SCAN_BATCH : query.limit + 1;
    const items: AdminUserDto[] = [];
    let more = false;
    for (;;) {
      const users = await this.page(query, after, batch);
      const roles = await this.roles.rolesOfEach(users.map((u) => u.entitlements));
      for (const [i, user] of users.entries()) {
        if (query.role && !roles[i].includes(query.role)) {
          continue;
        }
        if (items.length === query.limit) {
          more = true;
          break;
        }
        items.push(toDto(user, roles[i]));
      }
      const last = users[users.length - 1];
      if (more || users.length < batch || !last) {
        break;
      }
      after = { at: last.createdAt, id: last.id };
    }
    const last = items[items.length - 1];
    return { items, nextCursor: more && last ? encodeCursor(last.createdAt, last.id) : undefined };
  }

  async get(id: string): Promise<AdminUserDto> {
    const user = await this.em.fork().findOne(User, id);
    if (!user) {
      throw new NotFoundException(`There is no user ${id}.`);
    }
    return this.withRoles(user);
  }

  /**
   * Blocks or unblocks a user, at once: every request loads its user (session, token or
   * bearer; a bearer request's kept user is dropped here at once, elsewhere when PostgreSQL
   * notifies) and refuses a blocked one. Sessions and tokens are kept, so that unblocking
   * restores them.
   */
  async setBlocked(
    actor: UserPrincipal,
    id: string,
    blocked: boolean,
    origin: RequestOrigin,
  ): Promise<AdminUserDto> {
    if (blocked && id === actor.userId) {
      throw new ProblemException(
        HttpStatus.CONFLICT,
        'You cannot block yourself; another admin can block your account if it must be.',
      );
    }
    const user = await this.em.fork().transactional(async (em) => {
      const user = await em.findOne(User, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!user) {
        throw new NotFoundException(`There is no user ${id}.`);
      }
      if (user.blocked !== blocked) {
        user.blocked = blocked;
        this.audit.record(
          {
            actor,
            action: blocked ? 'user.block' : 'user.unblock',
            targetType: 'user',
            targetId: id,
            origin,
            details: { email: user.email, subject: user.subject },
          },
          em,
        );
      }
      return user;
    });
    usersChanged(id);
    return this.withRoles(user);
  }

  private async withRoles(user: User): Promise<AdminUserDto> {
    return toDto(user, await this.roles.rolesFor(user.entitlements));
  }

  private page(
    query: ListUsersQuery,
    after: { at: Date; id: string } | undefined,
    limit: number,
  ): Promise<User[]> {
    const where: FilterQuery<User>[] = [];
    if (query.q) {
      const pattern = `%${query.q.replace(/[\\%_]/g, '\\$&')}%`;
      where.push({
        $or: [
          { email: { $ilike: pattern } },
          { name: { $ilike: pattern } },
          { subject: { $ilike: pattern } },
        ],
      });
    }
    if (query.blocked !== undefined) {
      where.push({ blocked: query.blocked });
    }
    if (after) {
      where.push({
        $or: [{ createdAt: { $lt: after.at } }, { createdAt: after.at, id: { $lt: after.id } }],
      });
    }
    return this.em
      .fork()
      .find(User, { $and: where }, { orderBy: { createdAt: 'desc', id: 'desc' }, limit });
  }
}

function toDto(user: User, roles: Role[]): AdminUserDto {
  return {
    id: user.id,
    issuer: user.issuer,
    subject: user.subject,
    email: user.email,
    name: user.name,
    entitlements: user.entitlements,
    roles,
    blocked: user.blocked,
    createdAt: user.createdAt,
    lastLoginAt: user.lastLoginAt,
  };
}
