import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { ConfigError, loadConfig, readEnvironment } from './load-config';
import { VARIABLES } from './config.schema';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      return err.problems;
    }
    throw err;
  }
  throw new Error('expected the configuration to be refused');
}

describe(loadConfig.name, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'labgate-config-'));

  it('gives development defaults with nothing set', () => {
    const config = loadConfig({});
    expect(config.nodeEnv).toBe('development');
    expect(config.role).toBe('all');
    expect(config.port).toBe(3000);
    expect(config.host).toBe('127.0.0.1');
    expect(config.database.url).toBeUndefined();
    expect(config.redis.prefix).toBe('labgate');
    expect(config.bodyLimitBytes).toBe(1024 * 1024);
    expect(config.runsApi && config.runsWorker).toBe(true);
  });

  it('binds every interface by default in production', () => {
    const config = loadConfig({
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://db/labgate',
      REDIS_URL: 'redis://redis:6379',
      OIDC_ISSUER: 'https://login.example.org/',
    });
    expect(config.host).toBe('0.0.0.0');
    expect(config.publicUrl).toBe('http://127.0.0.1:3000');
  });

  it('refuses production without a database, Redis or identity provider', () => {
    const problems = problemsOf({ NODE_ENV: 'production' });
    expect(problems).toEqual([
      expect.stringMatching(/^DATABASE_URL: required when NODE_ENV=production/),
      expect.stringMatching(/^REDIS_URL: required when NODE_ENV=production/),
      expect.stringMatching(/^OIDC_ISSUER: required when NODE_ENV=production/),
    ]);
  });

  it('reads entitlement lists and strips a trailing slash from the issuer', () => {
    const config = loadConfig({
      OIDC_ISSUER: 'https://login.example.org/oidc/',
      ADMIN_ENTITLEMENTS: 'urn:a, urn:b',
    });
    expect(config.oidc.issuer).toBe('https://login.example.org/oidc');
    expect(config.auth.adminEntitlements).toEqual(['urn:a', 'urn:b']);
    expect(config.auth.operatorEntitlements).toEqual([]);
  });

  it('reads a secret from NAME_FILE, which wins over NAME', () => {
    const file = join(tmp, 'database_url');
    writeFileSync(file, 'postgres://from-file/labgate\n');
    const config = loadConfig({
      DATABASE_URL: 'postgres://from-env/labgate',
      DATABASE_URL_FILE: file,
    });
    expect(config.database.url).toBe('postgres://from-file/labgate');
  });

  it('names the variable when a NAME_FILE cannot be read', () => {
    const problems = problemsOf({ REDIS_URL_FILE: join(tmp, 'missing') });
    expect(problems).toEqual([expect.stringMatching(/^REDIS_URL_FILE: cannot read .*ENOENT/)]);
  });

  it('ignores NAME_FILE for variables that are not secrets', () => {
    const config = loadConfig({ PORT: '4000', PORT_FILE: join(tmp, 'missing') });
    expect(config.port).toBe(4000);
  });

  it('reports every bad variable at once, one message each', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      ROLE: 'both',
      WORKER_CONCURRENCY: '0',
      DATABASE_URL: 'not a url',
      BODY_LIMIT: 'huge',
      LOG_LEVEL: 'loud',
    });
    expect(problems).toHaveLength(6);
    expect(problems).toEqual(
      expect.arrayContaining([
        'PORT: "eighty" is not a whole number',
        'ROLE: "both" is not one of api, worker, all',
        'WORKER_CONCURRENCY: 0 is outside 1..256',
        'DATABASE_URL: "not a url" is not a valid URL',
        expect.stringMatching(/^BODY_LIMIT: "huge" is not a size/),
        expect.stringMatching(/^LOG_LEVEL: "loud" is not one of/),
      ]),
    );
  });

  it('never prints a password from a bad URL', () => {
    const problems = problemsOf({ DATABASE_URL: 'postgres//user:s3cret@host' });
    expect(problems.join()).not.toContain('s3cret');
  });

  describe('TRUST_PROXY', () => {
    /** What Express does with the value at boot (app.set compiles it at once). */
    const expressTakes = (value: unknown) => () => express().set('trust proxy', value);

    it.each<[string, boolean | number | string[]]>([
      ['false', false],
      ['0', false],
      ['true', true],
      ['2', 2],
      ['loopback', ['loopback']],
      [
        'LoopBack, 10.0.0.0/8 ,fd00::/8,192.168.1.10, ::1,linklocal,uniquelocal',
        ['loopback', '10.0.0.0/8', 'fd00::/8', '192.168.1.10', '::1', 'linklocal', 'uniquelocal'],
      ],
      ['10.0.0.0/255.0.0.0', ['10.0.0.0/255.0.0.0']],
    ])('takes %j as Express does', (raw, expected) => {
      const { trustProxy } = loadConfig({ TRUST_PROXY: raw }).http;
      expect(trustProxy).toEqual(expected);
      expect(expressTakes(trustProxy)).not.toThrow();
    });

    it.each(['10.0.0.300', '10.0.0.0/33', 'localhost', 'loopback,proxy.example.org', '-1', '1.5'])(
      'refuses %j in one line naming the entry, where Express would throw at boot',
      (raw) => {
        const problems = problemsOf({ TRUST_PROXY: raw, PORT: 'eighty' });
        expect(problems).toHaveLength(2);
        expect(problems).toContainEqual(
          expect.stringMatching(
            /^TRUST_PROXY: "[^"]+" is not true, false, a hop count, an IP address, a subnet .* or one of loopback, linklocal, uniquelocal$/,
          ),
        );
        expect(expressTakes(raw.split(','))).toThrow();
      },
    );
  });

  it('parses sizes with units', () => {
    expect(loadConfig({ BODY_LIMIT: '512kb' }).bodyLimitBytes).toBe(512 * 1024);
    expect(loadConfig({ BODY_LIMIT: '2gb' }).bodyLimitBytes).toBe(2 * 1024 ** 3);
  });

  it('reads a .env file, with the process environment taking precedence', () => {
    const dir = mkdtempSync(join(tmpdir(), 'labgate-dotenv-'));
    writeFileSync(
      join(dir, '.env'),
      'LABGATE_TEST_ONLY_A=from-file\nLABGATE_TEST_ONLY_B=from-file\n',
    );
    process.env.LABGATE_TEST_ONLY_B = 'from-process';
    try {
      const env = readEnvironment(dir);
      expect(env.LABGATE_TEST_ONLY_A).toBe('from-file');
      expect(env.LABGATE_TEST_ONLY_B).toBe('from-process');
    } finally {
      delete process.env.LABGATE_TEST_ONLY_B;
    }
  });

  it('has every variable documented in .env.example', () => {
    const example = readFileSync(join(__dirname, '..', '..', '.env.example'), 'utf8');
    const documented = new Set(
      [...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]),
    );
    const missing = VARIABLES.map((v) => v.name).filter((name) => !documented.has(name));
    expect(missing).toEqual([]);
  });
});
