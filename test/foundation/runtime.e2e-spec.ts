import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareRuntime, type RuntimeOptions } from '../../src/bootstrap';
import { loadConfig } from '../../src/config';

/** What prepareRuntime says it chose, as `level message` lines. */
function collect(lines: string[]): NonNullable<RuntimeOptions['log']> {
  return {
    info: (message) => lines.push(`info ${message}`),
    warn: (message) => lines.push(`warn ${message}`),
  };
}

describe(prepareRuntime.name, () => {
  const varDir = mkdtempSync(join(tmpdir(), 'labgate-runtime-'));
  // A database URL is only passed on (nothing connects here): no embedded database starts.
  const env = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/labgate_runtime_unused',
    VAR_DIR: varDir,
    DEV_IDP_PORT: '0',
  };
  afterAll(() => rmSync(varDir, { recursive: true, force: true }));

  it('starts the development identity provider when OIDC_ISSUER is unset', async () => {
    const lines: string[] = [];
    const runtime = await prepareRuntime(loadConfig(env), { redis: false, log: collect(lines) });
    const issuer = runtime.config.oidc.issuer;
    try {
      expect(runtime.config.oidc.development).toBe(true);
      expect(runtime.config.auth.adminEntitlements).toHaveLength(1);
      const discovery = await fetch(`${issuer}/.well-known/openid-configuration`);
      expect(discovery.status).toBe(200);
      expect(lines).toContainEqual(expect.stringMatching(/^warn identity provider: DEVELOPMENT/));
    } finally {
      await runtime.stop();
    }
    await expect(fetch(`${issuer}/.well-known/openid-configuration`)).rejects.toThrow();
  });

  it('starts neither the provider nor Redis when the caller (the CLI) needs neither', async () => {
    const lines: string[] = [];
    const config = loadConfig(env);
    const runtime = await prepareRuntime(config, {
      identityProvider: false,
      redis: false,
      log: collect(lines),
    });
    try {
      expect(runtime.config.oidc).toEqual(config.oidc);
      expect(runtime.config.oidc.issuer).toBeUndefined();
      expect(runtime.config.auth.adminEntitlements).toEqual([]);
      expect(runtime.config.redis.url).toBeUndefined();
      expect(runtime.config.database.url).toBe(env.DATABASE_URL);
      expect(lines).toEqual([expect.stringMatching(/^info database: PostgreSQL at /)]);
    } finally {
      await runtime.stop();
    }
  });
});
