import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MikroORM } from '@mikro-orm/postgresql';
import { Client } from 'pg';
import { mikroOrmOptions } from '../../../src/database/mikro-orm-options';
import { freePort } from '../labgate-process';
import { waitUntil } from '../recovery';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';

/** initdb and the server refuse to run as root: as root, run them as the `postgres` user. */
async function serverUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) {
    return undefined;
  }
  const [uid, gid] = await Promise.all(
    ['-u', '-g'].map(async (flag) => Number((await run('id', [flag, 'postgres'])).stdout.trim())),
  );
  return { uid, gid };
}

/**
 * A PostgreSQL cluster of one test file's own (initdb in a temp dir, a free port, trust auth),
 * which a chaos test may stop and start under load without touching the server other files
 * share. Durability is off (fsync, synchronous_commit): a stop is always a clean one here.
 */
export class PrivatePostgres {
  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly user: { uid: number; gid: number } | undefined,
  ) {}

  static async start(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'labgate-chaos-pg-'));
    const user = await serverUser();
    if (user) {
      chownSync(dir, user.uid, user.gid);
    }
    const pg = new PrivatePostgres(await freePort(), dir, user);
    await pg.ctl('initdb', [
      '-D',
      pg.dataDir,
      '-U',
      'postgres',
      '--auth=trust',
      '--no-sync',
      '-E',
      'UTF8',
    ]);
    await pg.start();
    return pg;
  }

  private get dataDir(): string {
    return join(this.dir, 'data');
  }

  adminUrl(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  /** Starts the server (again) on the same port and waits until it accepts queries. */
  async start(): Promise<void> {
    const options = [
      `-p ${this.port}`,
      `-k ${this.dir}`,
      '-c listen_addresses=127.0.0.1',
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c max_connections=200',
    ].join(' ');
    await this.ctl('pg_ctl', [
      '-D',
      this.dataDir,
      '-o',
      options,
      '-l',
      join(this.dir, 'server.log'),
      '-w',
      'start',
    ]);
    await waitUntil('the private PostgreSQL to accept queries', () => this.answers(), {
      timeoutMs: 15_000,
      intervalMs: 50,
    });
  }

  /**
   * Stops the server. `fast` (the default) ends every session at once, as a restart by an
   * operator does; `immediate` is a crash.
   */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.ctl('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', 'stop']);
  }

  /** A database migrated to the current schema; returns its URL. */
  async createDatabase(name: string): Promise<string> {
    const admin = new Client({ connectionString: this.adminUrl() });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE "${name}" TEMPLATE template0`);
    } finally {
      await admin.end();
    }
    const orm = await MikroORM.init({
      ...mikroOrmOptions(this.adminUrl(name), 1),
      entities: [],
      logger: () => {},
    });
    try {
      await orm.getMigrator().up();
    } finally {
      await orm.close(true);
    }
    return this.adminUrl(name);
  }

  /** Stops the server (if up) and removes its files. */
  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async answers(): Promise<boolean> {
    const client = new Client({ connectionString: this.adminUrl(), connectionTimeoutMillis: 1000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('select 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private async ctl(binary: 'initdb' | 'pg_ctl', args: string[]): Promise<void> {
    try {
      await run(join(BIN, binary), args, { ...this.user, cwd: this.dir, env: { LANG: 'C' } });
    } catch (err) {
      const { stdout, stderr } = err as { stdout?: string; stderr?: string };
      throw new Error(`${binary} ${args.join(' ')} failed:\n${stdout ?? ''}${stderr ?? ''}`);
    }
  }
}
