import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ServiceManifest } from '../catalog/manifest';
import { killOrphans } from '../jobs/work-dir';
import {
  AgentClient,
  AgentCommand,
  describeError,
  ProtocolError,
  TokenRefusedError,
} from './agent-client';
import { Backoff, sleep } from './backoff';
import { Ack, commandAction, CommandInbox } from './command-inbox';
import { JobContext, JobRun } from './job-runner';
import type { AgentOptions } from './options';

const CLAIM_WAIT_SECONDS = 30;
/** Until labgate has said how often it wants a heartbeat. */
const DEFAULT_HEARTBEAT_MS = 20_000;
const MAX_REMEMBERED_STOPS = 1000;

/**
 * The agent's two loops: a heartbeat (which also brings commands) and one claim loop per slot.
 * `run()` resolves with the exit code once it has stopped: on `stop()` (a signal), after the
 * one job of `--once`, or when labgate refuses the token.
 */
export class Agent {
  private readonly shutdown = new AbortController();
  private readonly running = new Map<string, { run: JobRun; done: Promise<void> }>();
  private readonly inbox = new CommandInbox();
  private readonly commandTasks = new Set<Promise<void>>();
  /** Jobs whose run was stopped lately (by a command, or by labgate's answer to progress). */
  private readonly stoppedJobs = new Set<string>();
  private readonly ctx: JobContext;
  private claimsLeft: number;
  private exitCode = 0;

  constructor(
    private readonly options: AgentOptions,
    services: ServiceManifest[],
    private readonly client: AgentClient,
    private readonly log: (line: string) => void,
  ) {
    this.claimsLeft = options.once ? 1 : Infinity;
    this.ctx = {
      client,
      services: new Map(services.map((s) => [s.key, s])),
      servicesDir: options.servicesDir,
      workRoot: resolve(options.workDir),
      log,
      shutdown: this.shutdown.signal,
    };
  }

  async run(): Promise<number> {
    await mkdir(this.ctx.workRoot, { recursive: true });
    const orphans = await killOrphans(this.ctx.workRoot);
    if (orphans > 0) {
      this.log(`ended ${orphans} program(s) left running by an agent that died`);
    }
    const heartbeat = this.heartbeatLoop();
    const slots = this.options.once ? 1 : this.options.slots;
    await Promise.all(Array.from({ length: slots }, () => this.claimLoop()));
    this.shutdown.abort(); // ends the heartbeat loop too (--once, or already stopping)
    await heartbeat;
    await Promise.allSettled([...this.commandTasks]);
    return this.exitCode;
  }

  /** SIGTERM/SIGINT: no new claims; running jobs are aborted and reported as stopped. */
  stop(why: string): void {
    if (!this.shutdown.signal.aborted) {
      this.log(`stopping (${why})`);
      this.shutdown.abort();
    }
  }

  private fatal(err: TokenRefusedError): void {
    if (this.exitCode === 0) {
      this.log(err.message);
      this.exitCode = 1;
    }
    this.shutdown.abort();
  }

  private async heartbeatLoop(): Promise<void> {
    const signal = this.shutdown.signal;
    const backoff = new Backoff();
    let interval = DEFAULT_HEARTBEAT_MS;
    while (!signal.aborted) {
      let delay = interval;
      try {
        const reply = await this.client.heartbeat(
          {
            status: this.running.size > 0 ? 'busy' : 'idle',
            runningJobs: [...this.running.keys()],
          },
          signal,
        );
        interval = reply.heartbeatSeconds * 1000;
        delay = interval;
        backoff.reset();
        this.receive(reply.commands);
      } catch (err) {
        if (signal.aborted) {
          break;
        }
        if (err instanceof TokenRefusedError) {
          this.fatal(err);
          break;
        }
        delay = Math.min(backoff.next(), interval);
        this.log(`heartbeat failed: ${describeError(err)}; next try in ${delay / 1000} s`);
      }
      await sleep(delay, signal);
    }
  }

  private receive(commands: AgentCommand[]): void {
    for (const command of commands) {
      const state = this.inbox.receive(command.id);
      if (state === 'wait') {
        continue;
      }
      const task = state === 'act' ? this.act(command) : this.ack(command.id, state);
      this.commandTasks.add(task);
      void task.finally(() => this.commandTasks.delete(task));
    }
  }

  private async act(command: AgentCommand): Promise<void> {
    const action = commandAction(command);
    const ack = action.kind === 'stop' ? await this.stopJob(action.jobId) : action.ack;
    this.inbox.answered(command.id, ack);
    await this.ack(command.id, ack);
  }

  /** Acknowledged once the program is gone, so that "stopped" means it. */
  private async stopJob(jobId: string): Promise<Ack> {
    const entry = this.running.get(jobId);
    if (!entry) {
      // A progress answer may have said "cancelled" before the command came: stopped already.
      return this.stoppedJobs.has(jobId)
        ? { ok: true, message: 'stopped' }
        : { ok: true, message: `job ${jobId} is not running on this device` };
    }
    entry.run.stop.abort();
    await entry.done;
    return { ok: true, message: 'stopped' };
  }

  private async ack(id: string, ack: Ack): Promise<void> {
    try {
      await this.client.ack(id, ack.ok, ack.message, this.shutdown.signal);
    } catch (err) {
      if (err instanceof TokenRefusedError) {
        this.fatal(err);
      } else if (!this.shutdown.signal.aborted) {
        // Still unacknowledged: labgate sends it again, and the same answer goes back.
        this.log(`ack of command ${id} failed: ${describeError(err)}`);
      }
    }
  }

  private async claimLoop(): Promise<void> {
    const signal = this.shutdown.signal;
    const backoff = new Backoff();
    while (!signal.aborted && this.claimsLeft > 0) {
      let job;
      try {
        job = await this.client.claim(CLAIM_WAIT_SECONDS, signal);
        backoff.reset();
      } catch (err) {
        if (signal.aborted) {
          break;
        }
        if (err instanceof TokenRefusedError) {
          this.fatal(err);
          break;
        }
        if (err instanceof ProtocolError && err.jobId) {
          await this.refuseClaim(err.jobId, err.message);
          continue;
        }
        const delay = backoff.next();
        this.log(`claim failed: ${describeError(err)}; next try in ${delay / 1000} s`);
        await sleep(delay, signal);
        continue;
      }
      if (!job) {
        continue; // 204: nothing for us yet; ask again
      }
      this.claimsLeft--;
      const run = new JobRun(job, this.ctx);
      const done = run.execute().catch((err: unknown) => {
        if (err instanceof TokenRefusedError) {
          this.fatal(err);
        } else {
          this.log(`job ${job.id}: ${describeError(err)}`);
        }
      });
      this.running.set(job.id, { run, done });
      await done;
      this.running.delete(job.id);
      if (run.stop.signal.aborted) {
        this.rememberStopped(job.id);
      }
    }
  }

  private rememberStopped(jobId: string): void {
    this.stoppedJobs.add(jobId);
    for (const old of this.stoppedJobs) {
      if (this.stoppedJobs.size <= MAX_REMEMBERED_STOPS) {
        break;
      }
      this.stoppedJobs.delete(old);
    }
  }

  /** A claim this agent cannot read still made the job ours: hand it back as failed. */
  private async refuseClaim(jobId: string, reason: string): Promise<void> {
    try {
      await this.client.fail(jobId, reason, this.shutdown.signal);
      this.log(`failed ${jobId}: ${reason}`);
    } catch (err) {
      if (err instanceof TokenRefusedError) {
        this.fatal(err);
      } else {
        this.log(`dropped ${jobId}: ${describeError(err)}`);
      }
    }
  }
}
