import { EntityManager } from '@mikro-orm/postgresql';
import { JobState, statesBefore } from '../../jobs/job-state';
import { Job } from '../../jobs/job.entity';
import { JobsService } from '../../jobs/jobs.service';
import { JobScheduler } from '../../jobs/scheduling/job-scheduler';
import { CliError } from '../cli-error';
import { CliModule } from '../cli.module';
import { CliIo, loadCliConfig, startRuntime, withAppContext } from '../cli-runtime';

export interface JobsRequeueOptions {
  state: JobState;
  service?: string;
  olderThanMinutes?: number;
  dryRun?: boolean;
}

/** The states the lifecycle lets a job leave for the queue (job-state.ts decides, not this file). */
export const REQUEUEABLE = statesBefore(JobState.Queued);

const ACTOR = 'system:cli';
const REASON = 'put back in the queue by an operator (cli jobs:requeue)';

/**
 * `jobs:requeue`: jobs stuck in a state (a device that will not come back, a cluster that lost
 * them) go back to the queue through the lifecycle's own guarded transition, one by one; the
 * scheduler then places them again. Each move writes its job event and audit row (system).
 */
export async function jobsRequeue(options: JobsRequeueOptions, io: CliIo): Promise<void> {
  if (!REQUEUEABLE.includes(options.state)) {
    throw new CliError(
      `${options.state} jobs cannot go back to the queue: the lifecycle allows it from ` +
        `${REQUEUEABLE.join(', ')} only`,
    );
  }
  const runtime = await startRuntime(loadCliConfig(), io, { redis: true });
  try {
    await withAppContext(CliModule.forRoot(runtime.config, 'jobs'), io, async (app) => {
      const em = app.get(EntityManager).getContext();
      const where = {
        state: options.state,
        ...(options.service !== undefined && { service: options.service }),
        ...(options.olderThanMinutes !== undefined && {
          updatedAt: { $lt: new Date(Date.now() - options.olderThanMinutes * 60_000) },
        }),
      };
      const jobs = await em.find(Job, where, {
        populate: ['device'],
        orderBy: { updatedAt: 'asc', id: 'asc' },
      });
      const service = app.get(JobsService);
      let moved = 0;
      for (const job of jobs) {
        const place = job.device ? ` on ${job.device.name}` : '';
        if (options.dryRun) {
          io.out(`would requeue ${job.id} ${job.service} (${job.state}${place})`);
          continue;
        }
        // The jobs module moves it and stops the attempt that held it, as a cancel would.
        const done = await service.requeue(job.id, {
          from: [options.state],
          actor: ACTOR,
          reason: REASON,
        });
        if (!done) {
          continue; // it moved on meanwhile (finished, cancelled, requeued by someone else)
        }
        moved++;
        io.out(`requeued ${job.id} ${job.service} (was ${job.state}${place})`);
      }
      if (moved > 0) {
        // Each move asked for a scheduling pass, but one asked for while the boot's pass ran is
        // dropped when the context closes: place the jobs now (rather than at another process's
        // next pass), so that they are on their way once the command says they were requeued.
        await app.get(JobScheduler).settle();
      }
      const skipped = jobs.length - moved;
      io.out(
        options.dryRun
          ? `${jobs.length} job(s) would be requeued`
          : `${moved} job(s) requeued${skipped ? `, ${skipped} changed state meanwhile and were left alone` : ''}`,
      );
    });
  } finally {
    await runtime.stop();
  }
}
