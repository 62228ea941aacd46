import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServiceManifest } from '../catalog/manifest';
import { runLocal } from '../jobs/runner/local-runner';
import { WorkDir } from '../jobs/work-dir';
import {
  AgentClient,
  AgentHttpError,
  ClaimedJob,
  Completion,
  describeError,
  TokenRefusedError,
  withRetries,
} from './agent-client';
import { ArchiveRefusedError, extractInputs, packOutputs } from './job-archive';
import { ProgressReporter } from './progress-reporter';

export interface JobContext {
  client: AgentClient;
  /** Local manifests by service key: `{serviceDir}` is the folder of the local one. */
  services: ReadonlyMap<string, ServiceManifest>;
  servicesDir: string;
  workRoot: string;
  log: (line: string) => void;
  /** Aborts when the agent shuts down. */
  shutdown: AbortSignal;
}

type Outcome =
  | { kind: 'complete'; parts: Completion }
  | { kind: 'fail'; reason: string }
  | { kind: 'stopped' }
  | { kind: 'gone'; why: string };

/** A job id names folders: only what labgate issues (UUIDs) is taken. */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
/** How long a job may take to say "the agent stopped" to labgate on the way out. */
const LAST_WORD_MS = 5000;

/**
 * One claimed job on this device, from inputs download to complete/fail: the agent-side twin
 * of the worker's JobExecutionService. `stop` aborts it (its job was cancelled); then nothing
 * is reported, since labgate already knows.
 */
export class JobRun {
  readonly stop = new AbortController();
  private readonly workDir: WorkDir;
  private readonly inputsArchive: string;
  private readonly resultArchive: string;

  constructor(
    readonly job: ClaimedJob,
    private readonly ctx: JobContext,
  ) {
    // The archives sit beside the program's folder, out of its reach.
    const safe = SAFE_ID.test(job.id) ? job.id : 'invalid-id';
    this.workDir = new WorkDir(join(ctx.workRoot, safe));
    this.inputsArchive = join(ctx.workRoot, `${safe}.inputs.tar.gz`);
    this.resultArchive = join(ctx.workRoot, `${safe}.result.tar.gz`);
  }

  /** Never rejects, except with TokenRefusedError (the agent must quit). */
  async execute(): Promise<void> {
    const { job, ctx } = this;
    ctx.log(`claimed ${job.id} (${job.service})`);
    let outcome: Outcome;
    try {
      outcome = await this.attempt();
    } catch (err) {
      if (err instanceof TokenRefusedError) {
        throw err;
      }
      outcome = this.stop.signal.aborted
        ? { kind: 'stopped' }
        : { kind: 'fail', reason: `agent error: ${describeError(err)}` };
    }
    try {
      await this.report(outcome);
    } finally {
      await this.cleanUp();
    }
  }

  private async attempt(): Promise<Outcome> {
    const { job, ctx } = this;
    const manifest = ctx.services.get(job.service);
    if (!manifest) {
      return fail(
        `service "${job.service}" is not installed on this device (no manifest for it in the agent's ${ctx.servicesDir})`,
      );
    }
    if (!SAFE_ID.test(job.id)) {
      return fail(`job id ${JSON.stringify(job.id)} cannot name a work folder`);
    }
    const signal = AbortSignal.any([this.stop.signal, ctx.shutdown]);
    await this.workDir.killOrphan();
    await this.cleanUp();
    await mkdir(this.workDir.root, { recursive: true });

    try {
      await withRetries(
        () => ctx.client.downloadInputs(job.inputsUrl, this.inputsArchive, signal),
        signal,
        (err, ms) =>
          ctx.log(`inputs of ${job.id}: ${describeError(err)}; next try in ${ms / 1000} s`),
      );
    } catch (err) {
      if (signal.aborted) {
        return { kind: 'stopped' };
      }
      if (isGone(err)) {
        return { kind: 'gone', why: describeError(err) };
      }
      throw err;
    }
    try {
      await extractInputs(this.inputsArchive, this.workDir.root);
    } catch (err) {
      if (err instanceof ArchiveRefusedError) {
        return fail(err.message);
      }
      throw err;
    }
    await rm(this.inputsArchive, { force: true });
    await mkdir(this.workDir.outputs, { recursive: true });

    const progress = new ProgressReporter((percent, message) =>
      this.sendProgress(percent, message),
    );
    const result = await runLocal({
      run: job.run,
      serviceDir: manifest.dir,
      workDir: this.workDir.root,
      logFile: this.workDir.logFile,
      signal,
      // For the next agent start, should this one die with SIGKILL: it ends the orphan.
      onSpawn: (pid) => void this.workDir.recordProgram(pid).catch(() => undefined),
      onProgress: (percent, message) => progress.report(percent, message),
    }).finally(() => progress.close());

    if (result.outcome === 'cancelled') {
      return { kind: 'stopped' };
    }
    if (result.outcome !== 'exited' || result.exitCode !== 0) {
      return fail(result.reason ?? `ended with ${result.outcome}`);
    }
    return this.collect(job.run.maxOutputBytes);
  }

  /** After exit 0: metrics.json read (labgate checks it against the schema) and outputs packed. */
  private async collect(maxOutputBytes: number): Promise<Outcome> {
    let metrics: string | undefined;
    try {
      metrics = await readFile(join(this.workDir.outputs, 'metrics.json'), 'utf8');
      const parsed: unknown = JSON.parse(metrics);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        return fail('outputs/metrics.json is not a JSON object');
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        return fail(`outputs/metrics.json is not valid JSON: ${(err as Error).message}`);
      }
      metrics = undefined;
    }
    const size = await packOutputs(this.workDir.outputs, this.resultArchive);
    if (size > maxOutputBytes) {
      return fail(`the outputs exceed ${maxOutputBytes} bytes packed`);
    }
    return {
      kind: 'complete',
      parts: { metrics, logFile: this.workDir.logFile, resultFile: this.resultArchive },
    };
  }

  private async sendProgress(percent: number, message: string | undefined): Promise<void> {
    try {
      const answer = await this.ctx.client.progress(
        this.job.id,
        percent,
        message,
        this.ctx.shutdown,
      );
      if (answer.status !== 'running') {
        this.stop.abort(); // cancelled (or otherwise ended) on labgate's side
      }
    } catch (err) {
      if (isGone(err)) {
        this.stop.abort();
      }
    }
  }

  private async report(outcome: Outcome): Promise<void> {
    const { job, ctx } = this;
    const retry = (err: unknown, ms: number) =>
      ctx.log(`reporting ${job.id}: ${describeError(err)}; next try in ${ms / 1000} s`);
    try {
      switch (outcome.kind) {
        case 'stopped':
          if (this.stop.signal.aborted) {
            ctx.log(`stopped ${job.id}`);
            return;
          }
          // The agent is shutting down: say so at once (the job is retried or failed)
          // rather than let labgate wait for this device to be declared down.
          await ctx.client.fail(
            job.id,
            'the device agent was stopped',
            AbortSignal.timeout(LAST_WORD_MS),
          );
          ctx.log(`failed ${job.id}: the device agent was stopped`);
          return;
        case 'gone':
          ctx.log(`dropped ${job.id}: ${outcome.why}`);
          return;
        case 'complete':
          try {
            await withRetries(
              () => ctx.client.complete(job.id, outcome.parts, ctx.shutdown),
              ctx.shutdown,
              retry,
            );
            ctx.log(`completed ${job.id}`);
            return;
          } catch (err) {
            if (!(err instanceof AgentHttpError) || isGone(err)) {
              throw err;
            }
            // e.g. metrics that do not match the result schema: the job would stay running.
            return this.report(fail(`labgate refused the result: ${err.detail}`));
          }
        case 'fail': {
          const answer = await withRetries(
            () => ctx.client.fail(job.id, outcome.reason, ctx.shutdown),
            ctx.shutdown,
            retry,
          );
          const again = answer.status === 'queued' ? ' (queued for another attempt)' : '';
          ctx.log(`failed ${job.id}: ${outcome.reason}${again}`);
          return;
        }
      }
    } catch (err) {
      if (err instanceof TokenRefusedError) {
        throw err;
      }
      ctx.log(`dropped ${job.id}: ${describeError(err)}`);
    }
  }

  private async cleanUp(): Promise<void> {
    await this.workDir.remove();
    await rm(this.inputsArchive, { force: true });
    await rm(this.resultArchive, { force: true });
  }
}

function fail(reason: string): Outcome {
  return { kind: 'fail', reason };
}

/** 404/409: the job is not (or no longer) this device's running job; nothing to report. */
function isGone(err: unknown): boolean {
  return err instanceof AgentHttpError && (err.status === 404 || err.status === 409);
}
