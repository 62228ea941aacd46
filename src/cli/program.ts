import { Command, InvalidArgumentError } from 'commander';
import { TOKEN_SCOPES } from '../auth/personal-access-token.entity';
import { DEVICE_KINDS, DEVICE_RUNNERS } from '../devices/device-state';
import { JobState } from '../jobs/job-state';
import { describeError } from './cli-error';
import { CliIo, processIo } from './cli-runtime';
import type { DeviceCreateOptions } from './commands/device-create';
import type { JobsRequeueOptions } from './commands/jobs-requeue';
import type { MigrationCreateOptions } from './commands/migration-create';
import type { TokenCreateOptions } from './commands/token-create';
import { LOCAL_ISSUER } from './user-ref';

/*
 * Commands are loaded when they run: `--help` and `config:init` then start in a fraction of a
 * second instead of loading Nest, MikroORM and Bull (seconds under ts-node). A dynamic
 * `import()` would stay an ES import in this CommonJS build and not find the .ts files.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
const commands = {
  migrate: () => require('./commands/migrate') as typeof import('./commands/migrate'),
  migrationCreate: () =>
    require('./commands/migration-create') as typeof import('./commands/migration-create'),
  configInit: () => require('./commands/config-init') as typeof import('./commands/config-init'),
  tokenCreate: () => require('./commands/token-create') as typeof import('./commands/token-create'),
  deviceCreate: () =>
    require('./commands/device-create') as typeof import('./commands/device-create'),
  jobsRequeue: () => require('./commands/jobs-requeue') as typeof import('./commands/jobs-requeue'),
  retentionRun: () =>
    require('./commands/retention-run') as typeof import('./commands/retention-run'),
};
/* eslint-enable @typescript-eslint/no-require-imports */

/** Runs a command's action; a failure is one line on stderr (and its stack with --verbose). */
function action<O>(run: (options: O, io: CliIo) => Promise<void> | void) {
  return async (options: O, command: Command): Promise<void> => {
    const io = processIo(command.optsWithGlobals<{ verbose?: boolean }>().verbose ?? false);
    try {
      await run(options, io);
    } catch (err) {
      process.stderr.write(`error: ${describeError(err)}\n`);
      if (io.verbose && err instanceof Error && err.stack) {
        process.stderr.write(`${err.stack}\n`);
      }
      process.exit(1);
    }
  };
}

function wholeNumber(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) {
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}.`);
    }
    return n;
  };
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function label(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) {
    throw new InvalidArgumentError('must be key=value.');
  }
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

function jobState(value: string): JobState {
  if (!(Object.values(JobState) as string[]).includes(value)) {
    throw new InvalidArgumentError(`must be one of ${Object.values(JobState).join(', ')}.`);
  }
  return value as JobState;
}

export function buildProgram(): Command {
  const program = new Command('npm run cli --')
    .description(
      'Administration of a labgate installation. Reads the configuration as the API does ' +
        '(environment, .env, NAME_FILE secrets). Results go to stdout, notes and errors to ' +
        'stderr; any error exits with status 1 and one line.',
    )
    .usage('[--verbose] <command> [options]')
    .option('-v, --verbose', 'log what happens on stderr; show the stack trace of an error')
    .showSuggestionAfterError()
    .helpCommand(false);

  program
    .command('migrate')
    .description(
      'Apply the pending database migrations (as every process does at boot, under the same ' +
        'lock) and list them. Run it before starting a new version.',
    )
    .action(action((_options: object, io) => commands.migrate().migrate(io)));

  program
    .command('migration:create')
    .description(
      'Write migrations/Migration<timestamp>.ts from the entity changes (npm run ' +
        'migration:create). Needs DATABASE_URL and the development dependencies.',
    )
    .option('--blank', 'an empty migration to fill in by hand')
    .option('--initial', 'the initial migration (an empty database and no snapshot)')
    .option('--dump', 'also print the SQL')
    .option('--name <name>', 'a name for the migration class')
    .action(
      action((options: MigrationCreateOptions, io) =>
        commands.migrationCreate().migrationCreate(options, io),
      ),
    );

  program
    .command('config:init')
    .description(
      'Write a .env holding every setting (commented defaults) and freshly generated secrets. ' +
        'Never overwrites a file.',
    )
    .option('--path <file>', 'where to write it', '.env')
    .action(
      action((options: { path: string }, io) => commands.configInit().configInit(options, io)),
    );

  program
    .command('token:create')
    .description(
      'Create a personal access token (lgp_…) for a user and print it once on stdout. With ' +
        '--create and --admin: the first admin, without SSO.',
    )
    .option('--user <ref>', 'the user: id (UUID), email, or issuer:subject')
    .option('--issuer <issuer>', 'the user by identity: issuer (with --subject)')
    .option('--subject <subject>', 'the user by identity: subject (with --issuer)')
    .option('--create', 'create the user when there is none (needs issuer:subject)')
    .option('--email <email>', 'email of the user --create creates')
    .option(
      '--admin',
      `make the user an admin (local accounts ${LOCAL_ISSUER}:<name> only): an entitlement ` +
        'and the entitlement rule that makes it admin',
    )
    .option(
      '--scopes <list>',
      `comma-separated, of ${TOKEN_SCOPES.join(', ')} (default read,write; with --admin also admin)`,
      list,
    )
    .option('--expires-days <n>', 'days the token works, 1-366', wholeNumber(1, 366), 30)
    .option('--name <name>', 'a name to tell the token apart', 'cli')
    .addHelpText(
      'after',
      `
The first admin of a new installation:
  npm run -s cli -- token:create --user ${LOCAL_ISSUER}:admin --create --admin --expires-days 7
prints only the token on stdout. Use it as "Authorization: Bearer lgp_…", e.g. to grant admin
to your SSO users (POST /api/v1/admin/entitlement-rules); revoke it (DELETE /api/v1/me/tokens/:id)
or block the account (PATCH /api/v1/admin/users/:id) once they can sign in.`,
    )
    .action(
      action((options: TokenCreateOptions, io) => commands.tokenCreate().tokenCreate(options, io)),
    );

  program
    .command('device:create')
    .description(
      'Register a device, with the rules of POST /api/v1/devices, and print its token (lgd_…) ' +
        'once on stdout. SSH devices need settings only the API takes.',
    )
    .requiredOption('--name <name>', 'unique name: A-Z a-z 0-9 . _ -')
    .requiredOption('--kind <kind>', DEVICE_KINDS.join(' | '))
    .requiredOption('--runner <runner>', DEVICE_RUNNERS.join(' | '))
    .requiredOption('--services <keys>', 'comma-separated service keys, or * for every one', list)
    .option('--slots <n>', 'jobs it runs at once', '1')
    .option('--location <text>', 'where it is, e.g. "Building B, room 2.14"')
    .option('--label <key=value>', 'a label (repeatable)', label, {})
    .action(
      action((options: DeviceCreateOptions, io) =>
        commands.deviceCreate().deviceCreate(options, io),
      ),
    );

  program
    .command('jobs:requeue')
    .description(
      'Put jobs in a state back in the queue through the job lifecycle (from assigned, ' +
        'running or failed), stopping what still runs them; prints each and how many.',
    )
    .requiredOption('--state <state>', 'assigned | running | failed', jobState)
    .option('--service <key>', 'only jobs of this service')
    .option(
      '--older-than-minutes <n>',
      'only jobs in that state for longer than this',
      wholeNumber(0, 525_600),
    )
    .option('--dry-run', 'list them, change nothing')
    .action(
      action((options: JobsRequeueOptions, io) => commands.jobsRequeue().jobsRequeue(options, io)),
    );

  program
    .command('retention:run')
    .description(
      'Run the retention pass now (workers run it hourly): remove the files of finished jobs ' +
        "past their service's retentionDays, mark them expired, and list them.",
    )
    .action(action((_options: object, io) => commands.retentionRun().retentionRun(io)));

  return program;
}
