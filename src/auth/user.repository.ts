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

export class UserRepository extends EntityRepository<User> {
  /**
   * Creates or refreshes the user named by (issuer, sub) in one statement, so that two first
   * requests of a new user at once cannot create it twice.
   */
  async upsertIdentity(claims: IdentityClaims, login: boolean): Promise<User> {
    const now = new Date();
    const em = this.getEntityManager();
    const [row] = await em.getConnection().execute<Array<Record<string, unknown>>>(
      `insert into app_user (id, issuer, subject, email, name, entitlements, blocked, created_at, last_login_at)
         values (gen_random_uuid(), ?, ?, ?, ?, ?::jsonb, false, ?, ?)
         on conflict (issuer, subject) do update set
           email = coalesce(excluded.email, app_user.email),
           name = coalesce(excluded.name, app_user.name),
           entitlements = case when ? then excluded.entitlements else app_user.entitlements end,
           last_login_at = case when app_user.blocked then app_user.last_login_at
                                else coalesce(excluded.last_login_at, app_user.last_login_at) end
         returning *`,
      [
        claims.issuer,
        claims.subject,
        claims.email ?? null,
        claims.name ?? null,
        JSON.stringify(claims.entitlements ?? []),
        now,
        login ? now : null,
        claims.entitlements !== undefined,
      ],
    );
    // The row as it now is, without reading it again (every bearer request passes here).
    return em.map(User, row);
  }
}
