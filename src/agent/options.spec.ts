import { parseAgentOptions, ParsedOptions } from './options';

const TOKEN = 'lgd_AbC-123_xyz';

function parse(argv: string[], env: NodeJS.ProcessEnv = {}, files: Record<string, string> = {}) {
  return parseAgentOptions(argv, env, (path) => {
    if (!(path in files)) {
      throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    }
    return files[path];
  });
}

function options(result: ParsedOptions) {
  if (result.kind !== 'run') {
    throw new Error(`expected options, got ${JSON.stringify(result)}`);
  }
  return result.options;
}

function message(result: ParsedOptions): string {
  if (result.kind !== 'error') {
    throw new Error(`expected an error, got ${JSON.stringify(result)}`);
  }
  return result.message;
}

describe(parseAgentOptions.name, () => {
  it('fills the defaults when only --url and --token are given', () => {
    expect(options(parse(['--url', 'https://labgate.example.org', '--token', TOKEN]))).toEqual({
      url: 'https://labgate.example.org',
      token: TOKEN,
      servicesDir: './services',
      workDir: './var/agent',
      slots: 1,
      once: false,
    });
  });

  it('takes every option', () => {
    const argv = [
      '--url=http://127.0.0.1:3000/labgate/',
      `--token=${TOKEN}`,
      '--services',
      '/srv/services',
      '--work-dir',
      '/var/lib/agent',
      '--slots',
      '4',
      '--once',
    ];
    expect(options(parse(argv))).toEqual({
      url: 'http://127.0.0.1:3000/labgate',
      token: TOKEN,
      servicesDir: '/srv/services',
      workDir: '/var/lib/agent',
      slots: 4,
      once: true,
    });
  });

  it.each([['--help'], ['-h'], ['--url', 'nope', '--help']])('answers help for %s', (...argv) => {
    expect(parse(argv)).toEqual({ kind: 'help' });
  });

  it('reads the token from --token-file, trimmed', () => {
    const result = parse(
      ['--url', 'https://x.org', '--token-file', '/etc/token'],
      {},
      {
        '/etc/token': `${TOKEN}\n`,
      },
    );
    expect(options(result).token).toBe(TOKEN);
  });

  it('reads the token from LABGATE_DEVICE_TOKEN when no flag gives one', () => {
    const result = parse(['--url', 'https://x.org'], { LABGATE_DEVICE_TOKEN: TOKEN });
    expect(options(result).token).toBe(TOKEN);
  });

  it('prefers --token over LABGATE_DEVICE_TOKEN', () => {
    const result = parse(['--url', 'https://x.org', '--token', TOKEN], {
      LABGATE_DEVICE_TOKEN: 'lgd_other',
    });
    expect(options(result).token).toBe(TOKEN);
  });

  it.each<[string, string[], NodeJS.ProcessEnv, RegExp]>([
    ['no --url', ['--token', TOKEN], {}, /--url is required/],
    ['a --url that is no URL', ['--url', 'labgate', '--token', TOKEN], {}, /not a URL/],
    ['a --url of another scheme', ['--url', 'ftp://x.org', '--token', TOKEN], {}, /http or https/],
    ['a --url with a query', ['--url', 'https://x.org/?a=1', '--token', TOKEN], {}, /query/],
    [
      'a --url with credentials',
      ['--url', 'https://u:p@x.org', '--token', TOKEN],
      {},
      /credentials/,
    ],
    ['no token anywhere', ['--url', 'https://x.org'], {}, /device token is required/],
    [
      'both --token and --token-file',
      ['--url', 'https://x.org', '--token', TOKEN, '--token-file', '/t'],
      {},
      /either --token or --token-file/,
    ],
    ['an unreadable --token-file', ['--url', 'https://x.org', '--token-file', '/t'], {}, /ENOENT/],
    ['a token of another kind', ['--url', 'https://x.org', '--token', 'lgp_abc'], {}, /lgd_/],
    ['an empty token', ['--url', 'https://x.org', '--token', ' '], {}, /--token is empty/],
    [
      'a bad LABGATE_DEVICE_TOKEN',
      ['--url', 'https://x.org'],
      { LABGATE_DEVICE_TOKEN: 'secret' },
      /LABGATE_DEVICE_TOKEN does not hold a device token/,
    ],
    ['--slots 0', ['--url', 'https://x.org', '--token', TOKEN, '--slots', '0'], {}, /--slots/],
    ['--slots 1.5', ['--url', 'https://x.org', '--token', TOKEN, '--slots', '1.5'], {}, /--slots/],
    ['--slots many', ['--url', 'https://x.org', '--token', TOKEN, '--slots', 'x'], {}, /--slots/],
    ['--slots 65', ['--url', 'https://x.org', '--token', TOKEN, '--slots', '65'], {}, /1 to 64/],
    [
      'an empty --work-dir',
      ['--url', 'https://x.org', '--token', TOKEN, '--work-dir='],
      {},
      /work-dir/,
    ],
    ['an unknown option', ['--url', 'https://x.org', '--token', TOKEN, '--fast'], {}, /--fast/],
    ['a positional argument', ['--url', 'https://x.org', '--token', TOKEN, 'go'], {}, /go/],
    ['--url without a value', ['--token', TOKEN, '--url'], {}, /--url/],
    ['a value for --once', ['--url', 'https://x.org', '--token', TOKEN, '--once=yes'], {}, /once/],
  ])('refuses %s with a one-line message', (_what, argv, env, pattern) => {
    const text = message(parse(argv, env));
    expect(text).toMatch(pattern);
    expect(text).not.toContain('\n');
  });

  it('never puts the token into an error message', () => {
    const text = message(parse(['--url', 'https://x.org', '--token', 'lgp_secret-value']));
    expect(text).not.toContain('secret-value');
  });
});
