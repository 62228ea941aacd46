import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/**
 * The embedded PostgreSQL: PGlite served over the wire protocol on a loopback port, so that a
 * newcomer needs no database server. PGlite runs one query at a time and its server accepts
 * `EMBEDDED_CONNECTIONS` clients; the ORM pool is capped to it.
 */
export const EMBEDDED_CONNECTIONS = 1;

export interface EmbeddedPostgres {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

export async function startEmbeddedPostgres(varDir: string): Promise<EmbeddedPostgres> {
  const dataDir = join(varDir, 'pglite');
  mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create({ dataDir });
  const server = new PGLiteSocketServer({
    db,
    host: '127.0.0.1',
    port: 0,
    maxConnections: EMBEDDED_CONNECTIONS,
  });
  await server.start();
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    dataDir,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
