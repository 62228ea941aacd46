import { parseArgs } from 'node:util';

export interface AgentOptions {
  /** labgate's base URL, without a trailing slash (a path prefix is kept). */
  url: string;
  token: string;
  servicesDir: string;
  workDir: string;
  slots: number;
  once: boolean;
}

export type ParsedOptions =
  { kind: 'run'; options: AgentOptions } | { kind: 'help' } | { kind: 'error'; message: string };

export const USAGE = `Usage: npm run agent -- --url <labgate URL> (--token <lgd_…> | --token-file <path>) [options]

Pulls jobs for this device from labgate and runs them locally.

  --url <url>           labgate's base URL, e.g. https://labgate.example.org (required)
  --token <token>       the device token (lgd_…); visible in the process list, so prefer:
  --token-file <path>   a file holding the device token
                        (or set LABGATE_DEVICE_TOKEN)
  --services <dir>      folder of service manifests (default ./services)
  --work-dir <dir>      where jobs run, one folder each (default ./var/agent)
  --slots <n>           jobs at once (default 1)
  --once                handle at most one job, then exit 0
  -h, --help            this text

Exit codes: 0 stopped (SIGTERM/SIGINT, or --once done), 1 token refused or bad manifests,
2 bad options.`;

const MAX_SLOTS = 64;
const TOKEN = /^lgd_[A-Za-z0-9_-]+$/;

/**
 * The agent's command line. Pure (files and environment come in as arguments) so that every
 * case is a unit test; `main.ts` turns the result into usage text or an exit code.
 */
export function parseAgentOptions(
  argv: string[],
  env: NodeJS.ProcessEnv,
  readTextFile: (path: string) => string,
): ParsedOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        'token-file': { type: 'string' },
        services: { type: 'string', default: './services' },
        'work-dir': { type: 'string', default: './var/agent' },
        slots: { type: 'string', default: '1' },
        once: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    // parseArgs' messages span lines and suggest `--`; one line is enough here.
    return error((err as Error).message.split('\n')[0]);
  }
  if (values.help) {
    return { kind: 'help' };
  }

  if (!values.url) {
    return error('--url is required (labgate base URL, e.g. https://labgate.example.org)');
  }
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    return error(`--url ${JSON.stringify(values.url)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return error(`--url must be http or https, not ${url.protocol.replace(/:$/, '')}`);
  }
  if (url.search || url.hash || url.username || url.password) {
    return error('--url must not hold a query, a fragment or credentials');
  }

  const token = readToken(values.token, values['token-file'], env, readTextFile);
  if ('message' in token) {
    return error(token.message);
  }

  const slots = Number(values.slots);
  if (!/^\d+$/.test(values.slots) || slots < 1 || slots > MAX_SLOTS) {
    return error(`--slots must be a whole number from 1 to ${MAX_SLOTS}, not ${values.slots}`);
  }
  for (const name of ['services', 'work-dir'] as const) {
    if (!values[name].trim()) {
      return error(`--${name} must not be empty`);
    }
  }

  return {
    kind: 'run',
    options: {
      url: `${url.origin}${url.pathname.replace(/\/+$/, '')}`,
      token: token.value,
      servicesDir: values.services,
      workDir: values['work-dir'],
      slots,
      once: values.once,
    },
  };
}

function readToken(
  flag: string | undefined,
  file: string | undefined,
  env: NodeJS.ProcessEnv,
  readTextFile: (path: string) => string,
): { value: string } | { message: string } {
  if (flag !== undefined && file !== undefined) {
    return { message: 'give either --token or --token-file, not both' };
  }
  let value: string | undefined;
  let from: string;
  if (flag !== undefined) {
    [value, from] = [flag, '--token'];
  } else if (file !== undefined) {
    from = `--token-file ${file}`;
    try {
      value = readTextFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      return { message: `${from} cannot be read (${code})` };
    }
  } else {
    [value, from] = [env.LABGATE_DEVICE_TOKEN, 'LABGATE_DEVICE_TOKEN'];
  }
  if (value === undefined || value.trim() === '') {
    return {
      message:
        flag === undefined && file === undefined
          ? 'a device token is required: --token, --token-file or LABGATE_DEVICE_TOKEN'
          : `${from} is empty`,
    };
  }
  value = value.trim();
  if (!TOKEN.test(value)) {
    return { message: `${from} does not hold a device token (lgd_…)` };
  }
  return { value };
}

function error(message: string): ParsedOptions {
  return { kind: 'error', message };
}
