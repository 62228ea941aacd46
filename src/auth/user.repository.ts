import { EntityRepository } from '@mikro-orm/postgresql';
import { User } from './user.entity';

export interface IdentityClaims {
  issuer: string;
  subject: string;
  email?: string;
  name?: string;
  /** Undefined when the source did not say (a token without the claim): keep what we have. */
  entitlements?: string[];
}

/** A sign-in refreshes last_login_at when the stored one is older than this. */
export const LOGIN_REFRESH_SECONDS = 60;

export class UserRepository extends EntityRepository<User> {
  /**
   * Creates or refreshes the user named by (issuer, sub) in one statement, so that two first
   * requests of a new user at once cannot create it twice. A user whose row already says what
   * the claims say, signed in within the last minute, is read and not written: every bearer
   * request passes here, and a write is a WAL flush before the request can go on.
   */
  async upsertIdentity(claims: IdentityClaims, login: boolean): Promise<User> {
    const now = new Date();
    const em = this.getEntityManager();
    const entitlements = JSON.stringify(claims.entitlements ?? []);
    const replaceEntitlements = claims.entitlements !== undefined;
    const loginAt = login ? now : null;
    const [row] = await em.getConnection().execute<Array<Record<string, unknown>>>(
      `with found as (
         select * from app_user
          where issuer = ? and subject = ?
            and email is not distinct from coalesce(?::text, email)
            and name is not distinct from coalesce(?::text, name)
            and (not ?::boolean or entitlements = ?::jsonb)
            and (blocked or ?::timestamptz is null
                 or last_login_at > ?::timestamptz - interval '${LOGIN_REFRESH_SECONDS} seconds')),
       upserted as (
         insert into app_user (id, issuer, subject, email, name, entitlements, blocked, created_at, last_login_at)
         select gen_random_uuid(), ?, ?, ?, ?, ?::jsonb, false, ?, ?
          where not exists (select 1 from found)
         on conflict (issuer, subject) do update set
           email = coalesce(excluded.email, app_user.email),
           name = coalesce(excluded.name, app_user.name),
           entitlements = case when ? then excluded.entitlements else app_user.entitlements end,
           last_login_at = case when app_user.blocked then app_user.last_login_at
                                else coalesce(excluded.last_login_at, app_user.last_login_at) end
         returning *)
       select * from found union all select * from upserted`,
      [
        claims.issuer,
        claims.subject,
        claims.email ?? null,
        claims.name ?? null,
        replaceEntitlements,
        entitlements,
        loginAt,
        loginAt,
        claims.issuer,
        claims.subject,
        claims.email ?? null,
        claims.name ?? null,
        entitlements,
        now,
        loginAt,
        replaceEntitlements,
      ],
    );
    // The row as it now is, without reading it again (every bearer request passes here).
    return em.map(User, row);
  }
}
