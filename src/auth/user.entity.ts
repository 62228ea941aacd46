import { randomUUID } from 'node:crypto';
import { Entity, EntityRepositoryType, PrimaryKey, Property, Unique } from '@mikro-orm/core';
import { UserRepository } from './user.repository';

/** A person known to labgate, keyed by their identity provider's (issuer, sub). */
@Entity({ tableName: 'app_user', repository: () => UserRepository })
@Unique({ properties: ['issuer', 'subject'] })
export class User {
  [EntityRepositoryType]?: UserRepository;

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Property({ type: 'text' })
  issuer!: string;

  @Property({ type: 'text' })
  subject!: string;

  @Property({ type: 'text', nullable: true })
  email?: string;

  @Property({ type: 'text', nullable: true })
  name?: string;

  /** As the identity provider last asserted them (login, or a bearer token that carries them). */
  @Property({ type: 'json' })
  entitlements: string[] = [];

  /** A blocked user's sessions and tokens stop working at once. */
  @Property({ type: 'boolean', default: false })
  blocked: boolean = false;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  lastLoginAt?: Date;
}
