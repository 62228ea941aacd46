import { Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { EntitlementRule } from './entitlement-rule.entity';
import { PersonalAccessToken } from './personal-access-token.entity';
import { Principals } from './principals';
import { RolesService } from './roles.service';
import { TokensService } from './tokens.service';
import { User } from './user.entity';

/**
 * Users, their personal access tokens and their roles: the part of authentication that needs
 * only the database. AuthModule adds sign-in (OIDC, passport, sessions) and the global guard
 * on top; the CLI imports this part alone, since no command signs anyone in and AuthModule
 * discovers the identity provider at boot (a network call).
 */
@Module({
  imports: [MikroOrmModule.forFeature([User, PersonalAccessToken, EntitlementRule])],
  providers: [TokensService, RolesService, Principals],
  exports: [TokensService, RolesService, Principals],
})
export class AccountsModule {}
