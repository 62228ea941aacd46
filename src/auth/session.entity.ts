import { randomUUID } from 'node:crypto';
import { Entity, ManyToOne, PrimaryKey, Property } from '@mikro-orm/core';
import { User } from './user.entity';

/** A browser session: the cookie holds a random secret, this row its SHA-256. */
@Entity({ tableName: 'auth_session' })
export class Session {
  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Property({ type: 'text', unique: true })
  secretHash!: string;

  @ManyToOne(() => User, { deleteRule: 'cascade' })
  user!: User;

  /** Kept to ask the provider to end its session too (RP-initiated logout). */
  @Property({ type: 'text', nullable: true, lazy: true })
  idToken?: string;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  expiresAt!: Date;
}
