import { join } from 'node:path';
import { Migrator } from '@mikro-orm/migrations';
import { defineConfig } from '@mikro-orm/postgresql';

/** Compiled to dist/src/database, so `../../migrations` is dist/migrations or ./migrations. */
const MIGRATIONS_DIR = join(__dirname, '..', '..', 'migrations');
const RUNNING_TS = __filename.endsWith('.ts');

export const MIGRATIONS_TABLE = 'mikro_orm_migrations';

/**
 * The ORM options shared by the app and the CLI: one place that says how labgate talks to
 * PostgreSQL and where its migrations live.
 */
export function mikroOrmOptions(url: string, poolMax: number) {
  return defineConfig({
    clientUrl: url,
    pool: { min: 0, max: poolMax },
    extensions: [Migrator],
    preferTs: RUNNING_TS,
    migrations: {
      tableName: MIGRATIONS_TABLE,
      path: MIGRATIONS_DIR,
      pathTs: MIGRATIONS_DIR,
      glob: RUNNING_TS ? '!(*.d).ts' : '!(*.d).js',
      transactional: true,
      allOrNothing: true,
      snapshot: true,
      snapshotName: '.snapshot',
      emit: 'ts',
    },
    forceUtcTimezone: true,
    colors: false,
    ignoreUndefinedInQuery: true,
    // Entities are registered by their modules (MikroOrmModule.forFeature + autoLoadEntities);
    // the CLI discovers them by file name instead.
    discovery: { warnWhenNoEntities: false },
  });
}
