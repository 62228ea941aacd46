import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, LabgateProcess } from '../support/labgate-process';
import { clearRedisPrefix } from '../support/redis';
import { TEST_REDIS_URL } from '../support/services';

describe('the labgate process', () => {
  const varDir = mkdtempSync(join(tmpdir(), 'labgate-process-'));
  afterAll(() => rmSync(varDir, { recursive: true, force: true }));

  it('refuses to boot on bad configuration, one line per bad variable', async () => {
    const proc = new LabgateProcess('main', {
      PORT: 'eighty',
      ROLE: 'everything',
      DATABASE_URL_FILE: '/nonexistent/secret',
    });
    const { code } = await proc.exited;
    expect(code).toBe(1);
    expect(proc.output).toContain('Invalid configuration:');
    expect(proc.output).toContain('  - PORT: "eighty" is not a whole number');
    expect(proc.output).toContain('  - ROLE: "everything" is not one of api, worker, all');
    expect(proc.output).toMatch(/ {2}- DATABASE_URL_FILE: cannot read "\/nonexistent\/secret"/);
  });

  it('refuses production without DATABASE_URL', async () => {
    const proc = new LabgateProcess('main', { NODE_ENV: 'production' });
    expect((await proc.exited).code).toBe(1);
    expect(proc.output).toMatch(/DATABASE_URL: required when NODE_ENV=production/);
  });

  it('starts with the embedded database, is ready, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const prefix = 'lgtest-process';
    const proc = new LabgateProcess('main', {
      PORT: String(port),
      VAR_DIR: varDir,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: prefix,
      DEV_IDP_PORT: '0',
    });
    try {
      await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:\d+/);
      expect(proc.output).toMatch(/EMBEDDED PostgreSQL \(PGlite\)/);
      const ready = await fetch(`http://127.0.0.1:${port}/health/ready`);
      expect(ready.status).toBe(200);
      // Credentials never reach the log, wherever the caller put them.
      const secret = 'lgp_ThisMustNeverBeLogged0123456789abcdefghijk';
      const denied = await fetch(`http://127.0.0.1:${port}/api/v1/me?token=${secret}`, {
        headers: { Authorization: `Bearer ${secret}`, Cookie: `labgate_session=${secret}` },
      });
      expect(denied.status).toBe(401);
      const docs = await fetch(`http://127.0.0.1:${port}/docs-json`);
      expect(((await docs.json()) as { openapi: string }).openapi).toMatch(/^3\./);
      proc.child.kill('SIGTERM');
      const { code } = await proc.exited;
      expect(code).toBe(0);
      expect(proc.output).toMatch(/SIGTERM: shutting down/);
      expect(proc.output).toMatch(/"url":"\/api\/v1\/me\?token=\[redacted\]"/);
      expect(proc.output).not.toContain(secret);
    } finally {
      await proc.stop();
      await clearRedisPrefix(prefix);
    }
  }, 60_000);
});
