import { Injectable } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { AppConfig } from '../config';
import { hashSecret, newSecret } from './secrets';
import { Session } from './session.entity';
import { User } from './user.entity';

export const SESSION_COOKIE = 'labgate_session';

@Injectable()
export class SessionsService {
  constructor(
    private readonly em: EntityManager,
    private readonly config: AppConfig,
  ) {}

  /** Starts a session; returns the secret for the cookie (stored only as its hash). */
  async create(
    user: User,
    idToken: string | undefined,
  ): Promise<{ secret: string; session: Session }> {
    const secret = newSecret('lgs_');
    const session = this.em.create(Session, {
      secretHash: hashSecret(secret),
      user,
      idToken,
      createdAt: new Date(),
      expiresAt: new Date(Date.now() + this.config.auth.sessionTtlMs),
    });
    await this.em.persistAndFlush(session);
    return { secret, session };
  }

  /** The live session of a cookie secret, with its user; undefined if unknown or expired. */
  async find(secret: string): Promise<Session | undefined> {
    const session = await this.em
      .fork()
      .findOne(
        Session,
        { secretHash: hashSecret(secret), expiresAt: { $gt: new Date() } },
        { populate: ['user'] },
      );
    return session ?? undefined;
  }

  /** Ends a session; returns its ID token (for RP-initiated logout) if there was one. */
  async end(sessionId: string): Promise<string | undefined> {
    const em = this.em.fork();
    const session = await em.findOne(Session, sessionId, { populate: ['idToken'] });
    if (!session) {
      return undefined;
    }
    const idToken = session.idToken;
    await em.removeAndFlush(session);
    return idToken;
  }
}
