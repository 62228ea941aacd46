import { randomBytes } from 'node:crypto';
import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { PassportModule } from '@nestjs/passport';
import { RateLimitModule } from '../common/rate-limit.module';
import { AppConfig } from '../config';
import { AccessGuard } from './access.guard';
import { AccountsModule } from './accounts.module';
import { AuthController } from './auth.controller';
import { Authenticator } from './authenticator';
import { EntitlementRule } from './entitlement-rule.entity';
import { EntitlementRulesController } from './entitlement-rules.controller';
import { EntitlementRulesService } from './entitlement-rules.service';
import { LoginFlow } from './login-flow.entity';
import { LoginService } from './login.service';
import { MeController } from './me.controller';
import { discoverProvider, OIDC_CONFIGURATION, OidcClient } from './oidc-client';
import { PassportRegistration, STRATEGY_NAME } from './passport-registration';
import { PersonalAccessToken } from './personal-access-token.entity';
import { Session } from './session.entity';
import { SessionsService } from './sessions.service';
import { TokenVerifier } from './token-verifier';
import { SignedInUsers } from './signed-in-users';
import { User } from './user.entity';

@Module({
  imports: [
    MikroOrmModule.forFeature([User, Session, LoginFlow, PersonalAccessToken, EntitlementRule]),
    AccountsModule,
    // Counted in Redis; the API-wide limits run after this module's guard has authenticated.
    RateLimitModule,
  ],
  controllers: [AuthController, MeController, EntitlementRulesController],
  providers: [
    { provide: OIDC_CONFIGURATION, inject: [AppConfig], useFactory: discoverProvider },
    OidcClient,
    TokenVerifier,
    SessionsService,
    Authenticator,
    SignedInUsers,
    LoginService,
    EntitlementRulesService,
    PassportRegistration,
    { provide: APP_GUARD, useClass: AccessGuard },
  ],
  // AccountsModule (RolesService) and Authenticator: the admin API shows users' roles and
  // guards the queue dashboard (plain Express, out of reach of the global guard) with the same
  // rules.
  exports: [OidcClient, AccountsModule, Authenticator],
})
export class AuthModule {
  /** Each app gets a passport strategy name of its own (passport is process-wide). */
  static forRoot(): DynamicModule {
    const name = `labgate-${randomBytes(6).toString('hex')}`;
    return {
      module: AuthModule,
      imports: [PassportModule.register({ defaultStrategy: name, session: false })],
      providers: [{ provide: STRATEGY_NAME, useValue: name }],
    };
  }
}
