import { createWriteStream, openAsBlob } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RunSpec } from '../catalog/manifest';
import { Backoff, sleep } from './backoff';

export interface AgentCommand {
  id: string;
  type: string;
  args?: Record<string, unknown>;
  createdAt?: string;
}

export interface HeartbeatReply {
  deviceId: string;
  name: string;
  heartbeatSeconds: number;
  commands: AgentCommand[];
}

export interface ClaimedJob {
  id: string;
  service: string;
  serviceVersion?: string;
  attempt?: number;
  run: RunSpec;
  inputsUrl: string;
}

export interface Completion {
  /** Raw JSON text of outputs/metrics.json, sent as the `metrics` field. */
  metrics?: string;
  logFile?: string;
  resultFile?: string;
}

/** labgate answered with an error status (401 excepted, see TokenRefusedError). */
export class AgentHttpError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    what: string,
  ) {
    super(`${what}: ${status} ${detail}`);
    this.name = 'AgentHttpError';
  }
}

/** 401 on any call: the token is unknown or was rotated; no retry can help. */
export class TokenRefusedError extends Error {
  constructor() {
    super('the device token was refused (rotated?)');
    this.name = 'TokenRefusedError';
  }
}

/** labgate answered 2xx with a body this agent cannot use. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';

  /** Set when the answer was a job claim with an id: that job is ours now, usable or not. */
  constructor(
    message: string,
    readonly jobId?: string,
  ) {
    super(message);
  }
}

/** Worth trying again later: the network, a timeout, or labgate having a bad moment. */
export function isTransient(err: unknown): boolean {
  if (err instanceof AgentHttpError) {
    return err.status >= 500 || err.status === 408 || err.status === 429;
  }
  if (err instanceof TokenRefusedError || err instanceof ProtocolError) {
    return false;
  }
  // fetch rejects with a TypeError ("fetch failed") on network errors, TimeoutError on timeout.
  const name = (err as Error | undefined)?.name;
  return name === 'TypeError' || name === 'TimeoutError';
}

/** One line for the log: fetch hides the useful part (ECONNREFUSED, …) in `cause`. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) {
    return String(err);
  }
  const cause = err.cause as NodeJS.ErrnoException | undefined;
  const detail = cause?.code ?? cause?.message;
  return detail && !err.message.includes(detail) ? `${err.message} (${detail})` : err.message;
}

/**
 * Runs `attempt` until it succeeds or fails for a reason other than a transient one, waiting
 * with backoff (1 s doubling to 30 s) in between. Rejects with an AbortError once `signal`
 * aborts.
 */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  signal: AbortSignal,
  onRetry?: (err: unknown, delayMs: number) => void,
  backoff = new Backoff(),
): Promise<T> {
  for (;;) {
    signal.throwIfAborted();
    try {
      return await attempt();
    } catch (err) {
      if (signal.aborted || !isTransient(err)) {
        throw err;
      }
      const delay = backoff.next();
      onRetry?.(err, delay);
      await sleep(delay, signal);
    }
  }
}

const TIMEOUT_MS = 60_000;
const UPLOAD_TIMEOUT_MS = 30 * 60_000;

/** The agent side of docs/agent-protocol.md: one method per call, no retries of its own. */
export class AgentClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  async heartbeat(
    body: { status: string; runningJobs: string[] },
    signal: AbortSignal,
  ): Promise<HeartbeatReply> {
    const res = await this.request('POST', '/api/v1/agent/heartbeat', { json: body, signal });
    const reply = (await res.json()) as HeartbeatReply;
    if (typeof reply?.heartbeatSeconds !== 'number' || !(reply.heartbeatSeconds > 0)) {
      throw new ProtocolError('the heartbeat answer has no heartbeatSeconds');
    }
    const commands = Array.isArray(reply.commands) ? reply.commands : [];
    return { ...reply, commands: commands.filter((c) => typeof c?.id === 'string') };
  }

  async ack(id: string, ok: boolean, message: string, signal: AbortSignal): Promise<void> {
    const path = `/api/v1/agent/commands/${encodeURIComponent(id)}/ack`;
    await this.request('POST', path, { json: { ok, message }, signal });
  }

  /** A job placed on this device, or undefined when none came within `waitSeconds`. */
  async claim(waitSeconds: number, signal: AbortSignal): Promise<ClaimedJob | undefined> {
    const res = await this.request('POST', `/api/v1/agent/jobs/claim?wait=${waitSeconds}`, {
      signal,
      timeoutMs: (waitSeconds + 30) * 1000,
    });
    if (res.status === 204) {
      return undefined;
    }
    return parseClaim(await res.json());
  }

  /** Streams the job's inputs tar.gz to `file`. */
  async downloadInputs(inputsUrl: string, file: string, signal: AbortSignal): Promise<void> {
    const res = await this.request('GET', inputsUrl, {
      signal,
      timeoutMs: UPLOAD_TIMEOUT_MS,
      accept: 'application/gzip',
    });
    if (!res.body) {
      throw new ProtocolError('the inputs answer has no body');
    }
    await pipeline(Readable.fromWeb(res.body), createWriteStream(file), {
      signal,
    });
  }

  async progress(
    jobId: string,
    percent: number,
    message: string | undefined,
    signal: AbortSignal,
  ): Promise<{ status: string }> {
    const res = await this.request('POST', `${jobPath(jobId)}/progress`, {
      // labgate takes whole percents and messages of up to 500 characters.
      json: { percent: Math.round(percent), message: clip(message, 500) },
      signal,
    });
    return (await res.json()) as { status: string };
  }

  async complete(jobId: string, parts: Completion, signal: AbortSignal): Promise<void> {
    const form = new FormData();
    if (parts.metrics !== undefined) {
      form.append('metrics', parts.metrics);
    }
    if (parts.logFile) {
      form.append('log', await openAsBlob(parts.logFile, { type: 'text/plain' }), 'job.log');
    }
    if (parts.resultFile) {
      const result = await openAsBlob(parts.resultFile, { type: 'application/gzip' });
      form.append('result', result, 'result.tar.gz');
    }
    await this.request('POST', `${jobPath(jobId)}/complete`, {
      form,
      signal,
      timeoutMs: UPLOAD_TIMEOUT_MS,
    });
  }

  async fail(jobId: string, reason: string, signal: AbortSignal): Promise<{ status: string }> {
    const res = await this.request('POST', `${jobPath(jobId)}/fail`, {
      json: { reason: clip(reason, 2000) },
      signal,
    });
    return (await res.json()) as { status: string };
  }

  /**
   * `path` is relative to the base URL (its path prefix kept). An absolute URL is accepted
   * only on labgate's own origin: the device token must never travel anywhere else.
   */
  private url(path: string): string {
    if (/^[a-z][a-z0-9+.-]*:/i.test(path)) {
      if (new URL(path).origin !== new URL(this.baseUrl).origin) {
        throw new ProtocolError(`refusing to send the device token to ${new URL(path).origin}`);
      }
      return path;
    }
    return `${this.baseUrl}${path.startsWith('/') ? '' : '/'}${path}`;
  }

  private async request(
    method: 'GET' | 'POST',
    path: string,
    options: {
      json?: unknown;
      form?: FormData;
      signal: AbortSignal;
      timeoutMs?: number;
      accept?: string;
    },
  ): Promise<Response> {
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.token}`,
      Accept: options.accept ?? 'application/json',
      'User-Agent': 'labgate-agent',
    };
    let body: string | FormData | undefined = options.form;
    if (options.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(options.json);
    }
    const what = `${method} ${path.split('?')[0]}`;
    const res = await fetch(this.url(path), {
      method,
      headers,
      body,
      signal: AbortSignal.any([
        options.signal,
        AbortSignal.timeout(options.timeoutMs ?? TIMEOUT_MS),
      ]),
    });
    if (res.ok) {
      return res;
    }
    const text = await res.text().catch(() => '');
    if (res.status === 401) {
      throw new TokenRefusedError();
    }
    throw new AgentHttpError(res.status, problemDetail(text) || res.statusText, what);
  }
}

function clip<T extends string | undefined>(text: T, max: number): T {
  return (text && text.length > max ? `${text.slice(0, max - 1)}…` : text) as T;
}

function jobPath(jobId: string): string {
  return `/api/v1/agent/jobs/${encodeURIComponent(jobId)}`;
}

interface FieldProblem {
  field?: string;
  message?: string;
}

function problemDetail(text: string): string {
  try {
    const problem = JSON.parse(text) as { detail?: unknown; title?: unknown; errors?: unknown };
    const detail = problem.detail ?? problem.title;
    if (typeof detail === 'string') {
      // With several problems the detail only says "see errors[]": name them.
      const errors = Array.isArray(problem.errors) ? (problem.errors as FieldProblem[]) : [];
      return errors.length > 1
        ? `${detail} ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`
        : detail;
    }
  } catch {
    // not JSON: the text itself, if short
  }
  return text.length <= 200 ? text.trim() : `${text.slice(0, 200).trim()}…`;
}

/** Checks the fields the agent relies on; anything else in the answer is ignored. */
export function parseClaim(body: unknown): ClaimedJob {
  const job = body as Partial<ClaimedJob> | null;
  const run = job?.run as Partial<RunSpec> | undefined;
  const problems: string[] = [];
  if (typeof job?.id !== 'string' || !job.id) {
    problems.push('id');
  }
  if (typeof job?.service !== 'string' || !job.service) {
    problems.push('service');
  }
  if (typeof job?.inputsUrl !== 'string' || !job.inputsUrl) {
    problems.push('inputsUrl');
  }
  if (
    !Array.isArray(run?.command) ||
    run.command.length === 0 ||
    !run.command.every((a) => typeof a === 'string')
  ) {
    problems.push('run.command');
  }
  if (typeof run?.timeoutSeconds !== 'number' || !(run.timeoutSeconds > 0)) {
    problems.push('run.timeoutSeconds');
  }
  if (typeof run?.maxOutputBytes !== 'number' || !(run.maxOutputBytes > 0)) {
    problems.push('run.maxOutputBytes');
  }
  if (run?.env !== undefined && !(Array.isArray(run.env) && run.env.every(isString))) {
    problems.push('run.env');
  }
  if (problems.length > 0) {
    const id = typeof job?.id === 'string' && job.id ? job.id : undefined;
    throw new ProtocolError(
      `the claim answer lacks a valid ${problems.join(', ')} (agent and labgate versions differ?)`,
      id,
    );
  }
  const claimed = job as ClaimedJob;
  return { ...claimed, run: { ...claimed.run, env: claimed.run.env ?? [] } };
}

function isString(value: unknown): value is string {
  return typeof value === 'string';
}
