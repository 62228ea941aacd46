import { Inject, Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import passport from 'passport';
import { Authenticator } from './authenticator';
import { RequestStrategy } from './request-strategy';

export const STRATEGY_NAME = Symbol('STRATEGY_NAME');

/**
 * Registers this app's strategy with passport under a name of its own: passport is a
 * process-wide singleton, and several apps (API processes in one test, say) must not share it.
 */
@Injectable()
export class PassportRegistration implements OnModuleInit, OnModuleDestroy {
  constructor(
    @Inject(STRATEGY_NAME) private readonly name: string,
    private readonly authenticator: Authenticator,
  ) {}

  onModuleInit(): void {
    passport.use(
      this.name,
      new RequestStrategy((req, done) => {
        this.authenticator.authenticate(req).then(
          (principal) => done(null, principal),
          (err: unknown) => done(err),
        );
      }),
    );
  }

  onModuleDestroy(): void {
    passport.unuse(this.name);
  }
}
