/**
 * The text the SSH runner sends to a cluster (job script, filled-in commands) and what it reads
 * back (job id, state). Pure functions: everything that could let a job's argument reach a shell
 * unquoted is here, in one place, with unit tests.
 */

/** Names inside a job's remote folder. */
export const REMOTE = {
  script: 'job.sh',
  log: 'log.txt',
  exitCode: 'exit_code',
  timedOut: 'timed_out',
  inputs: 'inputs',
  inputsJson: 'inputs.json',
  outputs: 'outputs',
  service: 'service',
} as const;

/** States after which a cluster job will not run again (Slurm's names; `+` already stripped). */
export const TERMINAL_STATES = new Set([
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'NODE_FAIL',
  'OUT_OF_MEMORY',
  'BOOT_FAIL',
  'DEADLINE',
  'PREEMPTED',
  'REVOKED',
]);

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * One POSIX shell word that means exactly `value`: single quotes keep everything literal
 * (`$`, backticks, `\`, newlines); a single quote itself becomes `'\''`.
 */
export function shellQuote(value: string): string {
  if (value.includes('\0')) {
    throw new Error('a shell argument cannot contain a NUL byte');
  }
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * An operator's command template (`sbatch --parsable {script}`, `scancel {id}`) with each
 * `{name}` replaced by its value as one quoted word. The template itself is trusted config.
 */
export function fillCommand(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in values ? shellQuote(values[name]) : whole,
  );
}

export interface JobScriptSpec {
  /** Absolute remote folder of the job. */
  jobDir: string;
  /** Final argv (`{serviceDir}` already replaced). */
  argv: string[];
  env: Record<string, string>;
  timeoutSeconds: number;
}

/**
 * `job.sh`: runs the argv in the job folder with the given environment, stdout and stderr to
 * `log.txt`, then records the exit code (written to a temp name and renamed, so that a reader
 * never sees half a number) and exits with it, so that the cluster's accounting agrees.
 */
export function jobScript(spec: JobScriptSpec): string {
  if (spec.argv.length === 0 || !spec.argv[0]) {
    throw new Error('empty command');
  }
  const exportLines = Object.entries(spec.env).map(([name, value]) => {
    if (!ENV_NAME.test(name)) {
      throw new Error(`not an environment variable name: ${JSON.stringify(name)}`);
    }
    return `export ${name}=${shellQuote(value)}`;
  });
  const command = spec.argv.map(shellQuote).join(' ');
  const redirect = `</dev/null >${REMOTE.log} 2>&1`;
  const seconds = Math.ceil(spec.timeoutSeconds);
  const run =
    seconds > 0
      ? [
          // GNU timeout exits 124 when the limit ended the program.
          'if command -v timeout >/dev/null 2>&1; then',
          `  timeout -k 30 ${seconds} ${command} ${redirect}`,
          '  code=$?',
          `  if [ "$code" -eq 124 ]; then : >${REMOTE.timedOut}; fi`,
          'else',
          `  ${command} ${redirect}`,
          '  code=$?',
          'fi',
        ]
      : [`${command} ${redirect}`, 'code=$?'];
  return [
    '#!/bin/sh',
    "# Written by labgate. Exits with the program's exit code, also kept in exit_code.",
    `cd ${shellQuote(spec.jobDir)} || exit 1`,
    ...exportLines,
    `mkdir -p ${REMOTE.outputs}`,
    `rm -f ${REMOTE.exitCode} ${REMOTE.timedOut}`,
    ...run,
    `echo "$code" >${REMOTE.exitCode}.tmp && mv ${REMOTE.exitCode}.tmp ${REMOTE.exitCode}`,
    'exit "$code"',
    '',
  ].join('\n');
}

/**
 * The cluster's job id from a submit command's stdout: `12345` or `12345;cluster` (sbatch
 * --parsable). The last line, because a chatty login script prints before the command does.
 */
export function parseExternalId(stdout: string): string | undefined {
  const line = stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .at(-1);
  const id = line?.trim().split(/\s+/)[0].split(';')[0];
  return id || undefined;
}

/**
 * The state word of a status command's output: first word of the first non-empty line,
 * upper-cased, without Slurm's trailing `+` (`CANCELLED+`, `CANCELLED by 1000` → `CANCELLED`).
 * Empty when the command printed nothing (squeue once the job has left the queue).
 */
export function parseClusterState(stdout: string): string {
  const line = stdout.split('\n').find((l) => l.trim() !== '');
  const word = line?.trim().split(/\s+/)[0] ?? '';
  return word.toUpperCase().replace(/\+$/, '');
}

/** A name that is one path segment of our own choosing, never `..` or a path. */
export function isSafeSegment(name: string): boolean {
  return /^[A-Za-z0-9._-]+$/.test(name) && name !== '.' && name !== '..';
}
