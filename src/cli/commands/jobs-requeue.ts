import { EntityManager } from '@mikro-orm/postgresql';
import { DeviceCommandsService } from '../../devices/device-commands.service';
import { JobEventsBus } from '../../jobs/job-events.bus';
import { JobOutcomes } from '../../jobs/job-outcomes.service';
import { JobState, statesBefore } from '../../jobs/job-state';
import { Job } from '../../jobs/job.entity';
import { DeviceQueues } from '../../jobs/scheduling/device-queues';
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
 * After the move: the attempt that held the job must not go on. Mirrors what cancelling does
 * (JobsService): a running agent gets a stop command, an unpolled cluster job is cancelled by
 * a worker, a local or SSH run is taken off its device queue, and the process still running
 * it (any worker) is told over Redis. A run that goes on anyway cannot finish the job: every
 * later move of its attempt is guarded by the state and device it no longer has.
 */
async function stopAttempt(
  job: Job,
  queues: DeviceQueues,
  commands: DeviceCommandsService,
  bus: JobEventsBus,
): Promise<void> {
  const device = job.device;
  if (!device) {
    return;
  }
  const run = { jobId: job.id, deviceId: device.id, assignment: job.assignment };
  if (device.runner === 'agent') {
    if (job.state === JobState.Running) {
      await commands.issue(device.id, { type: 'stop', args: { jobId: job.id } }, 'system');
    }
  } else if (device.runner === 'ssh' && !device.ssh?.statusCommand && job.externalId) {
    await queues.cancelOnCluster({ ...run, externalId: job.externalId });
  } else {
    await queues.remove(run);
  }
  if (job.state === JobState.Running) {
    await bus.publish({ type: 'cancel', jobId: job.id });
  }
}

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
      const outcomes = app.get(JobOutcomes);
      const queues = app.get(DeviceQueues);
      const commands = app.get(DeviceCommandsService);
      const bus = app.get(JobEventsBus);
      let moved = 0;
      for (const job of jobs) {
        const place = job.device ? ` on ${job.device.name}` : '';
        if (options.dryRun) {
          io.out(`would requeue ${job.id} ${job.service} (${job.state}${place})`);
          continue;
        }
        const done = await outcomes.move(job.id, {
          to: JobState.Queued,
          from: [options.state],
          actor: ACTOR,
          reason: REASON,
          patch: {
            device: null,
            progress: 0,
            progressMessage: null,
            notBefore: null,
            finishedAt: null,
            externalId: null,
          },
        });
        if (!done) {
          continue; // it moved on meanwhile (finished, cancelled, requeued by someone else)
        }
        moved++;
        await stopAttempt(job, queues, commands, bus);
        io.out(`requeued ${job.id} ${job.service} (was ${job.state}${place})`);
      }
      // Each move asked for a scheduling pass here. Let it place and hand over the jobs before
      // the context closes: the device queues close with it, and a placement whose hand-over
      // was cut short would wait for a worker's reconciler (up to 30 s).
      await app.get(JobScheduler).settle();
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
