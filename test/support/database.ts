import { randomBytes } from 'node:crypto';
import { MikroORM } from '@mikro-orm/postgresql';
import { Client } from 'pg';
import { mikroOrmOptions } from '../../src/database/mikro-orm-options';
import { PG_ADMIN_URL } from './services';

export const TEMPLATE_ENV = 'LABGATE_TEST_TEMPLATE_DB';

export function databaseUrl(name: string): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function admin<T>(work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** One query on its own connection to `url` (a test's database): its rows. */
export async function queryRows<T>(
  url: string,
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as T[];
  } finally {
    await client.end();
  }
}

export async function dropDatabase(name: string): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
}

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/**
 * A database of this test file's own: a copy of the migrated template (fast), or empty.
 * PostgreSQL refuses to copy a template while another copy is being made, so retry then.
 */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<TestDatabase> {
  const name = `labgate_t_${randomBytes(5).toString('hex')}`;
  const template = options.empty ? 'template0' : process.env[TEMPLATE_ENV];
  if (!template) {
    throw new Error(`${TEMPLATE_ENV} is unset: run the tests through jest (globalSetup)`);
  }
  await admin(async (client) => {
    for (let attempt = 0; ; attempt++) {
      try {
        await client.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== '55006' || attempt > 100) {
          throw err;
        }
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
  });
  return { name, url: databaseUrl(name), drop: () => dropDatabase(name) };
}

/** Creates the template every test database copies: empty, then migrated once per run. */
export async function createTemplateDatabase(name: string): Promise<void> {
  await dropDatabase(name);
  await admin((c) => c.query(`CREATE DATABASE "${name}" TEMPLATE template0`));
  const orm = await MikroORM.init({
    ...mikroOrmOptions(databaseUrl(name), 1),
    entities: [],
    logger: () => {},
  });
  try {
    await orm.getMigrator().up();
  } finally {
    await orm.close(true);
  }
}
