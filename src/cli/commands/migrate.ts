import { Logger } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import { AuditEvent } from '../../audit/audit-event.entity';
import { AuditService } from '../../audit/audit.service';
import { MigrationRunner } from '../../database/migration-runner';
import { mikroOrmOptions } from '../../database/mikro-orm-options';
import { CliIo, cliOrigin, loadCliConfig, startRuntime } from '../cli-runtime';

/**
 * `migrate`: what every labgate process does at boot (the same runner, under the same
 * PostgreSQL advisory lock, so it is safe while API and worker replicas start), run ahead of
 * a deployment so that the new processes find their schema ready. Prints what it applied.
 */
export async function migrate(io: CliIo): Promise<void> {
  Logger.overrideLogger(false); // the runner logs through Nest; the names are printed below
  const runtime = await startRuntime(loadCliConfig(), io, { redis: false });
  try {
    const orm = await MikroORM.init({
      ...mikroOrmOptions(runtime.config.database.url!, 1),
      // The audit log's only: what it applied is recorded there (the table exists once applied).
      entities: [AuditEvent],
      logger: (message: string) => (io.verbose ? io.note(message) : undefined),
    });
    try {
      const applied = await new MigrationRunner(orm, runtime.config).migrate();
      for (const name of applied) {
        io.out(`applied ${name}`);
      }
      if (applied.length > 0) {
        const em = orm.em.fork();
        new AuditService(em).record({
          action: 'database.migrate',
          targetType: 'database',
          origin: cliOrigin(),
          details: { applied },
        });
        await em.flush();
      }
      const done = await orm.getMigrator().getExecutedMigrations();
      io.out(
        applied.length > 0
          ? `${applied.length} migration(s) applied, ${done.length} in all`
          : `no pending migrations (${done.length} applied)`,
      );
    } finally {
      await orm.close(true);
    }
  } finally {
    await runtime.stop();
  }
}
