/**
 * Who `token:create --user` names: a user id, an email, or an identity `issuer:subject`
 * (split at the last colon: issuers are URLs or URNs, subjects rarely hold one; for those,
 * `--issuer` and `--subject` say it exactly).
 */
export type UserRef = { kind: 'id'; id: string } | { kind: 'email'; email: string } | IdentityRef;

export interface IdentityRef {
  kind: 'identity';
  issuer: string;
  subject: string;
}

/**
 * Accounts of this issuer are labgate's own (the CLI's bootstrap admins): no identity provider
 * signs anyone in with it, so nothing ever overwrites the entitlements the CLI gives them.
 */
export const LOCAL_ISSUER = 'urn:labgate:local';

/** The entitlement `token:create --admin` gives a local account, and the rule that makes it admin. */
export const LOCAL_ADMIN_ENTITLEMENT = 'urn:labgate:local:admin';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EMAIL = /^[^\s@:]+@[^\s@:]+$/;

export function parseUserRef(ref: string): UserRef {
  const value = ref.trim();
  if (UUID.test(value)) {
    return { kind: 'id', id: value.toLowerCase() };
  }
  if (EMAIL.test(value)) {
    return { kind: 'email', email: value };
  }
  const colon = value.lastIndexOf(':');
  if (colon > 0 && colon < value.length - 1) {
    return { kind: 'identity', issuer: value.slice(0, colon), subject: value.slice(colon + 1) };
  }
  throw new Error(
    `--user ${JSON.stringify(ref)} is not a user id (UUID), an email, or issuer:subject ` +
      `(e.g. ${LOCAL_ISSUER}:admin)`,
  );
}

/** How a user is shown in messages: their identity, and their email when known. */
export function describeUser(user: { issuer: string; subject: string; email?: string }): string {
  return `${user.issuer}:${user.subject}${user.email ? ` <${user.email}>` : ''}`;
}
