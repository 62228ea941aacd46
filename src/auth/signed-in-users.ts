import { Injectable } from '@nestjs/common';
import { ChangeChannel, ChangeFeed, changedHere, NotifiedCache } from '../database/change-feed';
import type { User } from './user.entity';
import { LOGIN_REFRESH_SECONDS, type IdentityClaims, type RoleRules } from './user.repository';

/** Users (by issuer and subject) whose row and roles a process keeps for bearer requests. */
const KEPT = 10_000;

export interface SignedIn {
  user: User;
  rules: RoleRules;
}

/** This process has just committed a change to these users: they are dropped now. */
export function usersChanged(...ids: string[]): void {
  changedHere(ChangeChannel.User, ...ids);
}

/** This process has just committed a change to the entitlement rules. */
export function rulesChanged(): void {
  changedHere(ChangeChannel.Rules, '');
}

/**
 * The user row and entitlement rules of bearer requests, kept in memory on the ChangeFeed's
 * word: a script repeats its token with every call, and each call read both (one statement,
 * UserRepository.upsertIdentityWithRules). A kept user answers only while the statement would
 * answer the same without writing: the token's claims match the row, and its last sign-in is
 * under LOGIN_REFRESH_SECONDS old (after that the statement runs, and refreshes it). Any
 * change of the user's row (blocked, say) or of the rules, by whichever process, drops it: by
 * PostgreSQL's notification (Migration20261202110000), and at once in the process that made
 * the change (`usersChanged`, `rulesChanged`).
 */
@Injectable()
export class SignedInUsers {
  private readonly kept: NotifiedCache<SignedIn>;
  /** The key each kept user's id is kept under. */
  private readonly keys = new Map<string, string>();

  constructor(feed: ChangeFeed) {
    this.kept = new NotifiedCache<SignedIn>(feed, KEPT, LOGIN_REFRESH_SECONDS * 1000);
    feed.on(ChangeChannel.User, (id) => this.userChanged(id));
    feed.on(ChangeChannel.Rules, () => this.rulesChanged());
    feed.onLost(() => this.keys.clear());
  }

  /** The signed-in user for these claims: from memory, else from `load` (and kept). */
  async read(claims: IdentityClaims, load: () => Promise<SignedIn>): Promise<SignedIn> {
    const key = `${claims.issuer}\n${claims.subject}`;
    const found = await this.kept.read(
      key,
      async () => {
        const loaded = await load();
        this.keys.set(loaded.user.id, key);
        return loaded;
      },
      ({ user }) => answersFor(user, claims),
    );
    return found!; // `load` always answers
  }

  private userChanged(id: string): void {
    const key = this.keys.get(id);
    if (key !== undefined) {
      this.keys.delete(id);
      this.kept.invalidate(key);
    } else {
      // Not kept here, but a read of that user may be in flight: none keeps anything.
      this.kept.overtakeReads();
    }
  }

  private rulesChanged(): void {
    this.kept.clear();
    this.keys.clear();
  }
}

/**
 * Whether the user row answers for these claims as the upsert would without writing (the
 * same conditions as its `found` part).
 */
function answersFor(user: User, claims: IdentityClaims): boolean {
  const fresh =
    user.blocked ||
    (user.lastLoginAt !== undefined &&
      Date.now() - user.lastLoginAt.getTime() < LOGIN_REFRESH_SECONDS * 1000);
  return (
    fresh &&
    (claims.email === undefined || claims.email === user.email) &&
    (claims.name === undefined || claims.name === user.name) &&
    (claims.entitlements === undefined ||
      JSON.stringify(claims.entitlements) === JSON.stringify(user.entitlements))
  );
}
