import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import { Client } from 'pg';
import { AppConfig } from '../config';

/** Any constant shared by every labgate process; it names the migration lock. */
const MIGRATION_LOCK_KEY = 0x1ab6a7e;

/**
 * Applies pending migrations while the app boots, before any module touches the database.
 * Several processes may boot at once against one PostgreSQL, so the work happens under an
 * advisory lock held on a connection of its own (not the ORM pool's, which may be tiny).
 */
@Injectable()
export class MigrationRunner implements OnModuleInit {
  private readonly logger = new Logger(MigrationRunner.name);

  constructor(
    private readonly orm: MikroORM,
    private readonly config: AppConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.migrate();
  }

  async migrate(): Promise<string[]> {
    if (this.config.database.embedded) {
      // One process owns the embedded database, and it serves a single connection.
      return this.runPending();
    }
    const lock = new Client({ connectionString: this.config.database.url });
    await lock.connect();
    try {
      await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      return await this.runPending();
    } finally {
      await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
      await lock.end();
    }
  }

  private async runPending(): Promise<string[]> {
    const applied = await this.orm.getMigrator().up();
    const names = applied.map((m) => m.name);
    if (names.length > 0) {
      this.logger.log(`applied ${names.length} migration(s): ${names.join(', ')}`);
    }
    return names;
  }
}
