import { parse } from 'dotenv';
import { VARIABLES } from '../config/config.schema';
import { loadConfig } from '../config';
import { freshSecrets, renderEnvFile } from './env-file';

describe(renderEnvFile.name, () => {
  const secrets = { metricsToken: 'tok_abc-123', databasePassword: 'feedc0ffee' };
  const text = renderEnvFile(secrets, new Date('2026-01-02T03:04:05Z'));

  it('names every variable of config.schema.ts once, and nothing else', () => {
    const named = [...text.matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]);
    expect(named).toEqual(VARIABLES.map((v) => v.name));
  });

  it('sets only the generated secrets; every other value is a commented default', () => {
    const set = text.split('\n').filter((line) => /^[A-Z]/.test(line));
    expect(set).toEqual(['METRICS_TOKEN=tok_abc-123']);
    expect(text).toContain('# PORT=3000');
    expect(text).toContain('# HOST=127.0.0.1');
    expect(text).toContain('# DATABASE_URL=postgres://labgate:feedc0ffee@127.0.0.1:5432/labgate');
    expect(text).toMatch(/^# OIDC_CLIENT_SECRET=$/m);
  });

  it('is a .env labgate loads, with the generated metrics token', () => {
    const config = loadConfig(parse(text));
    expect(config.http.metricsToken).toBe('tok_abc-123');
    expect(config.port).toBe(3000);
  });

  it('says which variables are secrets that may come from a file', () => {
    const unwrapped = text.replace(/\n# /g, ' ');
    for (const spec of VARIABLES.filter((v) => v.secret)) {
      expect(unwrapped).toContain(`from the file that ${spec.name}_FILE names`);
    }
  });

  it('wraps the documentation at 100 columns', () => {
    const comments = text
      .split('\n')
      .filter((line) => line.startsWith('# ') && !line.includes('='));
    expect(comments.filter((line) => line.length > 100)).toEqual([]);
  });
});

describe(freshSecrets.name, () => {
  it('makes different, URL-safe secrets of 256 bits each time', () => {
    const a = freshSecrets();
    const b = freshSecrets();
    expect(a.metricsToken).not.toBe(b.metricsToken);
    expect(a.databasePassword).not.toBe(b.databasePassword);
    expect(a.metricsToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.databasePassword).toMatch(/^[0-9a-f]{48}$/);
  });
});
