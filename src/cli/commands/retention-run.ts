import { EntityManager } from '@mikro-orm/postgresql';
import { AuditService } from '../../audit/audit.service';
import { CatalogService } from '../../catalog/catalog.service';
import { AppConfig } from '../../config';
import { JobEventsBus } from '../../jobs/job-events.bus';
import { JobState } from '../../jobs/job-state';
import { RetentionService } from '../../jobs/retention.service';
import { BlobStorage } from '../../storage/blob-storage';
import { CliModule } from '../cli.module';
import { CliIo, cliOrigin, loadCliConfig, startRuntime, withAppContext } from '../cli-runtime';

/**
 * `retention:run`: the worker's hourly retention pass, now. RetentionService exists in worker
 * processes only (the CLI boots with ROLE=api, so that no Bull processor starts): it is made
 * here from the same instances the jobs module holds. Prints each job whose files it removed,
 * then what the orphan sweep removed (storage prefixes with no job row, stale scratch and work
 * directories of this machine).
 */
export async function retentionRun(io: CliIo): Promise<void> {
  const runtime = await startRuntime(loadCliConfig(), io, { redis: true });
  try {
    await withAppContext(CliModule.forRoot(runtime.config, 'jobs'), io, async (app) => {
      const em = app.get(EntityManager);
      const retention = new RetentionService(
        em,
        app.get(CatalogService),
        app.get(BlobStorage),
        app.get(JobEventsBus),
        app.get(AppConfig),
      );
      const startedAt = new Date();
      // The worker's pass in its two steps, so that each is listed.
      const expired = await retention.expire(startedAt);
      // Its moves are job events of the retention actor, stamped from this clock.
      const rows = await em
        .getConnection()
        .execute<Array<{ job_id: string; service: string; reason: string }>>(
          `select e.job_id, j.service, e.reason from job_event e join job j on j.id = e.job_id
            where e.state = ? and e.actor = 'system:retention' and e.at >= ?
            order by e.at, e.job_id`,
          [JobState.Expired, startedAt],
        );
      for (const row of rows) {
        io.out(`expired ${row.job_id} ${row.service}: ${row.reason}`);
      }
      const swept = await retention.sweepOrphans();
      for (const prefix of swept.storage) {
        io.out(`removed ${prefix} from storage: no job row (an interrupted submission)`);
      }
      for (const path of swept.local) {
        io.out(`removed VAR_DIR/${path}: left by an interrupted request or run`);
      }
      io.out(expired > 0 ? `${expired} job(s) expired, their files removed` : 'nothing to expire');
      // The run itself, by hand, in the audit log (each job it expired has its own row).
      const tx = em.fork();
      app.get(AuditService).record(
        {
          action: 'retention.run',
          targetType: 'storage',
          origin: cliOrigin(),
          details: {
            expired,
            storageOrphans: swept.storage.length,
            localOrphans: swept.local.length,
          },
        },
        tx,
      );
      await tx.flush();
    });
  } finally {
    await runtime.stop();
  }
}
