/** A demo account of the development identity provider. */
export interface DevUser {
  sub: string;
  login: string;
  password: string;
  email: string;
  name: string;
  entitlements: string[];
}

const GROUP = 'urn:mace:labgate.dev:group:labgate';
// The `#authority` suffix mirrors how AARC-style proxies (e.g. EGI Check-in) issue entitlements,
// so entitlement matching is exercised against realistic values even on a newcomer's machine.
const AUTHORITY = '#dev-idp';
const MEMBER = `${GROUP}${AUTHORITY}`;

export const DEV_USERS: readonly DevUser[] = Object.freeze([
  {
    sub: 'dev-admin',
    login: 'admin',
    password: 'admin',
    email: 'admin@labgate.dev',
    name: 'Ada Admin',
    entitlements: [MEMBER, `${GROUP}:role=admin${AUTHORITY}`],
  },
  {
    sub: 'dev-operator',
    login: 'operator',
    password: 'operator',
    email: 'operator@labgate.dev',
    name: 'Otto Operator',
    entitlements: [MEMBER, `${GROUP}:role=operator${AUTHORITY}`],
  },
  {
    sub: 'dev-user',
    login: 'user',
    password: 'user',
    email: 'user@labgate.dev',
    name: 'Uma User',
    entitlements: [MEMBER],
  },
]);
