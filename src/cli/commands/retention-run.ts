import { EntityManager } from '@mikro-orm/postgresql';
import { CatalogService } from '../../catalog/catalog.service';
import { JobEventsBus } from '../../jobs/job-events.bus';
import { JobState } from '../../jobs/job-state';
import { RetentionService } from '../../jobs/retention.service';
import { JobScheduler } from '../../jobs/scheduling/job-scheduler';
import { BlobStorage } from '../../storage/blob-storage';
import { CliModule } from '../cli.module';
import { CliIo, loadCliConfig, startRuntime, withAppContext } from '../cli-runtime';

/**
 * `retention:run`: the worker's hourly retention pass, now. RetentionService exists in worker
 * processes only (the CLI boots with ROLE=api, so that no Bull processor starts): it is made
 * here from the same instances the jobs module holds. Prints each job whose files it removed.
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
      );
      const startedAt = new Date();
      const expired = await retention.run(startedAt);
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
      io.out(expired > 0 ? `${expired} job(s) expired, their files removed` : 'nothing to expire');
      // The jobs module ran a scheduling pass at boot, as an API does; let it finish handing
      // over what it placed before the device queues close.
      await app.get(JobScheduler).settle();
    });
  } finally {
    await runtime.stop();
  }
}
