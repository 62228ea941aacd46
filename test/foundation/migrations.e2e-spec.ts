import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MikroORM } from '@mikro-orm/postgresql';
import { Client } from 'pg';
import { createApi } from '../../src/bootstrap';
import { MIGRATIONS_TABLE } from '../../src/database/mikro-orm-options';
import { createTestDatabase } from '../support/database';
import { createTestEnvironment, TestEnvironment } from '../support/test-app';

const migrationFiles = readdirSync(join(__dirname, '..', '..', 'migrations'))
  .filter((f) => /^Migration\d+.*\.ts$/.test(f))
  .map((f) => f.replace(/\.ts$/, ''))
  .sort();

async function query<T>(url: string, sql: string): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('migrations', () => {
  let env: TestEnvironment;

  beforeAll(async () => {
    env = await createTestEnvironment({}, { emptyDatabase: true });
  });
  afterAll(() => env.dispose());

  it('are applied on boot to an empty database, by several processes at once', async () => {
    const db = env.database;
    // Two API processes booting together: the advisory lock lets one migrate, the other waits.
    const apps = await Promise.all([createApi(env.config), createApi(env.config)]);
    await Promise.all(apps.map((a) => a.init()));
    await Promise.all(apps.map((a) => a.close()));

    const applied = await query<{ name: string }>(
      db.url,
      `select name from ${MIGRATIONS_TABLE} order by name`,
    );
    expect(applied.map((r) => r.name)).toEqual(migrationFiles);
    const tables = await query<{ table_name: string }>(
      db.url,
      `select table_name from information_schema.tables where table_schema = 'public'`,
    );
    expect(tables.map((t) => t.table_name)).toContain('audit_event');
  });

  it('leave nothing pending and match the entities (no drift)', async () => {
    const db = await createTestDatabase();
    const orm = await MikroORM.init({
      clientUrl: db.url,
      entitiesTs: ['./src/**/*.entity.ts'],
      entities: ['./src/**/*.entity.ts'],
      preferTs: true,
      logger: () => {},
    });
    try {
      const diff = await orm.getSchemaGenerator().getUpdateSchemaSQL({ wrap: false });
      expect(diff.trim()).toBe('');
    } finally {
      await orm.close(true);
      await db.drop();
    }
  });
});
