import { Entity, PrimaryKey, Property } from '@mikro-orm/core';

/**
 * A login in progress, between the redirect to the provider and its callback. Deleted when
 * the callback uses it, so that a replayed callback finds nothing.
 */
@Entity({ tableName: 'auth_login_flow' })
export class LoginFlow {
  @PrimaryKey({ type: 'text' })
  state!: string;

  @Property({ type: 'text' })
  nonce!: string;

  @Property({ type: 'text' })
  codeVerifier!: string;

  @Property({ type: 'text' })
  returnTo!: string;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  createdAt: Date = new Date();
}
