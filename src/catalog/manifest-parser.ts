import { dirname } from 'node:path';
import { parseInputs } from './input-spec-parser';
import type { ServiceManifest } from './manifest';
import { describe, FieldReader, isObject, Problems, YamlObject } from './manifest-fields';
import { compileResultSchema } from './result-schema';

export const SERVICE_KEY = /^[a-z0-9][a-z0-9-]{0,62}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const MiB = 1024 ** 2;
export const DEFAULTS = {
  timeoutSeconds: 3600,
  maxOutputBytes: 10 * MiB,
  retry: { attempts: 1, backoffSeconds: 10 },
  retentionDays: 30,
};

const TOP_KEYS = [
  'key',
  'title',
  'description',
  'version',
  'inputs',
  'resultSchema',
  'run',
  'retry',
  'requiredEntitlement',
  'retentionDays',
  'maxConcurrentJobs',
  'maxRunningPerUser',
  'priority',
];
const RUN_KEYS = ['command', 'env', 'timeoutSeconds', 'maxOutputBytes'];
const RETRY_KEYS = ['attempts', 'backoffSeconds'];

/**
 * Validates one parsed manifest. Returns the manifest with defaults filled in, or every
 * problem found, each as `<field path>: <what is wrong>`.
 */
export function parseManifest(
  raw: unknown,
  file: string,
): { manifest?: ServiceManifest; problems: string[] } {
  const problems = new Problems();
  if (!isObject(raw)) {
    problems.add('(top level)', `must be a mapping of manifest fields, not ${describe(raw)}`);
    return { problems: problems.list };
  }
  const top = new FieldReader(problems, raw, '');
  top.onlyKeys(TOP_KEYS);
  const key = top.string('key', {
    required: true,
    pattern: SERVICE_KEY,
    hint: 'must be lower-case letters, digits and dashes (at most 63, not starting with a dash)',
  });
  const title = top.string('title', { required: true });
  const description = top.string('description') ?? '';
  const version = top.string('version', { required: true });
  const inputs = parseInputs(raw.inputs, problems);
  const run = parseRun(raw.run, problems);
  const retry = parseRetry(raw.retry, problems);
  const requiredEntitlement = top.string('requiredEntitlement');
  const retentionDays = top.number('retentionDays', { integer: true, min: 1 });
  const maxConcurrentJobs = top.number('maxConcurrentJobs', { integer: true, min: 1 });
  const maxRunningPerUser = top.number('maxRunningPerUser', { integer: true, min: 1 });
  const priority = top.number('priority', { integer: true, min: -1000, max: 1000 });
  const resultSchema = parseResultSchema(raw.resultSchema, problems);

  if (problems.list.length > 0 || !key || !title || !version || !inputs || !run || !retry) {
    return { problems: problems.list };
  }
  const manifest: ServiceManifest = {
    key,
    title,
    description,
    version,
    inputs,
    run,
    retry,
    retentionDays: retentionDays ?? DEFAULTS.retentionDays,
    priority: priority ?? 0,
    dir: dirname(file),
    file,
  };
  if (resultSchema) {
    manifest.resultSchema = resultSchema;
  }
  if (requiredEntitlement) {
    manifest.requiredEntitlement = requiredEntitlement;
  }
  if (maxConcurrentJobs) {
    manifest.maxConcurrentJobs = maxConcurrentJobs;
  }
  if (maxRunningPerUser) {
    manifest.maxRunningPerUser = maxRunningPerUser;
  }
  return { manifest, problems: [] };
}

function parseRun(raw: unknown, problems: Problems): ServiceManifest['run'] | undefined {
  if (raw === undefined || raw === null) {
    problems.add('run', 'is required (at least run.command, the argv to execute)');
    return undefined;
  }
  if (!isObject(raw)) {
    problems.add('run', `must be a mapping (command, env, …), not ${describe(raw)}`);
    return undefined;
  }
  const run = new FieldReader(problems, raw, 'run');
  run.onlyKeys(RUN_KEYS);
  let command: string[] | undefined;
  if (typeof raw.command === 'string') {
    problems.add('run.command', 'must be a list of arguments (argv), never a shell string');
  } else if (raw.command === undefined || raw.command === null) {
    problems.add(
      'run.command',
      'is required (the argv to execute, e.g. [node, "{serviceDir}/x.js"])',
    );
  } else {
    command = run.strings('command', { nonEmpty: true });
  }
  const env = run.strings('env', {
    pattern: ENV_NAME,
    hint: 'is not an environment variable name',
  });
  const timeoutSeconds = run.number('timeoutSeconds', { integer: true, min: 1 });
  const maxOutputBytes = run.size('maxOutputBytes');
  if (!command || (run.has('env') && !env)) {
    return undefined;
  }
  return {
    command,
    env: env ?? [],
    timeoutSeconds: timeoutSeconds ?? DEFAULTS.timeoutSeconds,
    maxOutputBytes: maxOutputBytes ?? DEFAULTS.maxOutputBytes,
  };
}

function parseRetry(raw: unknown, problems: Problems): ServiceManifest['retry'] | undefined {
  if (raw === undefined || raw === null) {
    return { ...DEFAULTS.retry };
  }
  if (!isObject(raw)) {
    problems.add('retry', `must be a mapping (attempts, backoffSeconds), not ${describe(raw)}`);
    return undefined;
  }
  const retry = new FieldReader(problems, raw, 'retry');
  retry.onlyKeys(RETRY_KEYS);
  return {
    attempts:
      retry.number('attempts', { integer: true, min: 1, max: 100 }) ?? DEFAULTS.retry.attempts,
    backoffSeconds:
      retry.number('backoffSeconds', { integer: true, min: 0, max: 86_400 }) ??
      DEFAULTS.retry.backoffSeconds,
  };
}

function parseResultSchema(raw: unknown, problems: Problems): YamlObject | undefined {
  if (raw === undefined || raw === null) {
    return undefined;
  }
  if (!isObject(raw)) {
    problems.add('resultSchema', `must be a JSON Schema object, not ${describe(raw)}`);
    return undefined;
  }
  try {
    compileResultSchema(raw);
  } catch (err) {
    problems.add('resultSchema', `is not a valid JSON Schema: ${(err as Error).message}`);
    return undefined;
  }
  return raw;
}
