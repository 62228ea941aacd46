import { EntityRepository } from '@mikro-orm/postgresql';
import type { RoleSources } from './roles';
import { User } from './user.entity';

export type RoleRules = RoleSources['rules'];

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
    return (await this.upsertRow(claims, login, false)).user;
  }

  /**
   * The same, with the entitlement rules read in the same statement: what a request's
   * principal needs (its roles), in one round trip.
   */
  upsertIdentityWithRules(
    claims: IdentityClaims,
    login: boolean,
  ): Promise<{ user: User; rules: RoleRules }> {
    return this.upsertRow(claims, login, true) as Promise<{ user: User; rules: RoleRules }>;
  }

  private async upsertRow(
    claims: IdentityClaims,
    login: boolean,
    withRules: boolean,
  ): Promise<{ user: User; rules?: RoleRules }> {
    const now = new Date();
    const em = this.getEntityManager();
    const [row] = await em.getConnection().execute<Array<Record<string, unknown>>>(
      `with claims as (
         select ?::text as issuer, ?::text as subject, ?::text as email, ?::text as name,
                ?::jsonb as entitlements, ?::boolean as replace_entitlements,
                ?::timestamptz as login_at, ?::timestamptz as now),
       found as (
         select u.* from app_user u, claims c
          where u.issuer = c.issuer and u.subject = c.subject
            and u.email is not distinct from coalesce(c.email, u.email)
            and u.name is not distinct from coalesce(c.name, u.name)
            and (not c.replace_entitlements or u.entitlements = c.entitlements)
            and (u.blocked or c.login_at is null
                 or u.last_login_at > c.login_at - interval '${LOGIN_REFRESH_SECONDS} seconds')),
       upserted as (
         insert into app_user (id, issuer, subject, email, name, entitlements, blocked, created_at, last_login_at)
         select gen_random_uuid(), c.issuer, c.subject, c.email, c.name, c.entitlements, false,
                c.now, c.login_at
           from claims c
          where not exists (select 1 from found)
         on conflict (issuer, subject) do update set
           email = coalesce(excluded.email, app_user.email),
           name = coalesce(excluded.name, app_user.name),
           entitlements = case when (select replace_entitlements from claims)
                               then excluded.entitlements else app_user.entitlements end,
           last_login_at = case when app_user.blocked then app_user.last_login_at
                                else coalesce(excluded.last_login_at, app_user.last_login_at) end
         returning *)
       select u.*${
         withRules
           ? `, (select coalesce(json_agg(json_build_object(
                   'entitlement', r.entitlement, 'match', r.match, 'role', r.role)), '[]')
                  from entitlement_rule r) as entitlement_rules`
           : ''
       }
         from (select * from found union all select * from upserted) u`,
      [
        claims.issuer,
        claims.subject,
        claims.email ?? null,
        claims.name ?? null,
        JSON.stringify(claims.entitlements ?? []),
        claims.entitlements !== undefined,
        login ? now : null,
        now,
      ],
    );
    // The row as it now is, without reading it again (every bearer request passes here).
    const { entitlement_rules: rules, ...user } = row;
    return { user: em.map(User, user), rules: rules as RoleRules | undefined };
  }
}
