import { Injectable } from '@nestjs/common';
import type { UserCredential, UserPrincipal } from '../common/principal';
import { RolesService } from './roles.service';
import { User } from './user.entity';
import type { RoleRules } from './user.repository';

/** Builds the principal of a signed-in user from their row and how they signed in. */
@Injectable()
export class Principals {
  constructor(private readonly roles: RolesService) {}

  async forUser(
    user: User,
    via: UserCredential,
    extra: Partial<UserPrincipal> = {},
    rules?: RoleRules,
  ): Promise<UserPrincipal> {
    return {
      kind: 'user',
      userId: user.id,
      issuer: user.issuer,
      subject: user.subject,
      email: user.email,
      name: user.name,
      entitlements: user.entitlements,
      roles: await this.roles.rolesFor(user.entitlements, rules),
      via,
      ...extra,
    };
  }
}
