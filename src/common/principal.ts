/**
 * Who is calling, as the global guard resolved it. Features read it through `@CurrentPrincipal()`
 * and never look at credentials themselves.
 */
export type Role = 'admin' | 'operator' | 'user';

export type UserCredential = 'session' | 'bearer' | 'pat';

export interface UserPrincipal {
  kind: 'user';
  userId: string;
  issuer: string;
  subject: string;
  email?: string;
  name?: string;
  entitlements: string[];
  roles: Role[];
  via: UserCredential;
  /** Personal access tokens only: what the token may do. */
  scopes?: string[];
  /** Session only: the session row, so that logout can end it. */
  sessionId?: string;
  /** Personal access tokens only: the token's id. */
  tokenId?: string;
}

/** A registered device calling with its device token (`lgd_…`), on agent routes only. */
export interface DevicePrincipal {
  kind: 'device';
  deviceId: string;
  name: string;
}

export type Principal = UserPrincipal | DevicePrincipal;

export function hasRole(principal: Principal | undefined, role: Role): boolean {
  return principal?.kind === 'user' && principal.roles.includes(role);
}
