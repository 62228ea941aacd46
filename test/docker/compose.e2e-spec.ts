import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

/**
 * The container files cannot be run here (no Docker engine, no image registry), so this checks
 * what can be checked without one: docker-compose 1.29 validates docker/compose.yml against the
 * compose schema and prints it resolved; the rest reads that output, the Dockerfile and
 * package.json, so that neither can name a script or a setting the project does not have.
 */

const root = join(__dirname, '..', '..');
const composeFile = join('docker', 'compose.yml');
const dockerfile = readFileSync(join(root, 'docker', 'Dockerfile'), 'utf8');
const scripts: Record<string, string> = JSON.parse(
  readFileSync(join(root, 'package.json'), 'utf8'),
).scripts;

interface Service {
  command?: string | string[];
  healthcheck?: { test?: string | string[]; disable?: boolean };
  environment?: Record<string, string | null>;
  secrets?: { source: string }[];
  volumes?: (string | { source?: string; target: string })[];
  deploy?: { replicas?: number };
  ports?: (string | { target: number; published?: string | number })[];
}
interface ResolvedCompose {
  services: Record<string, Service>;
  secrets?: Record<string, { file?: string }>;
}

/** `docker-compose config`: schema validation plus the resolved file, or a failure that says why. */
function resolveCompose(): ResolvedCompose {
  let out: string;
  try {
    out = execFileSync('docker-compose', ['-f', composeFile, 'config'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { status?: number; stderr?: string };
    if (e.code === 'ENOENT') {
      throw new Error(
        'docker-compose is not installed, so docker/compose.yml cannot be validated. ' +
          '.ci/run installs it with apt-get install -y docker-compose (Debian, compose 1.29; ' +
          'it validates without a Docker engine).',
      );
    }
    throw new Error(
      `docker-compose -f ${composeFile} config exited ${e.status}: ${e.stderr ?? e.message}`,
    );
  }
  return parse(out) as ResolvedCompose;
}

/** A compose command or healthcheck as one string, whichever form the file uses. */
function asText(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(' ') : (value ?? '');
}

/** Names X of every `npm run X` in a command line. */
function npmRunScripts(command: string): string[] {
  return [...command.matchAll(/\bnpm\s+(?:run|run-script)\s+([^\s;&|'"]+)/g)].map((m) => m[1]);
}

/** Dockerfile instructions, continuation lines joined and comments dropped. */
function instructions(text: string): { keyword: string; args: string }[] {
  const logical = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\r?\n/g, ' ');
  return logical
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const [, keyword, args] = /^(\S+)\s*(.*)$/.exec(line)!;
      return { keyword: keyword.toUpperCase(), args };
    });
}

/** The argv of an exec-form (JSON array) instruction, or the shell-form text as is. */
function commandText(args: string): string {
  return args.startsWith('[') ? (JSON.parse(args) as string[]).join(' ') : args;
}

describe('docker/compose.yml', () => {
  let compose: ResolvedCompose;

  beforeAll(() => {
    compose = resolveCompose();
  }, 30_000);

  it('passes docker-compose schema validation and defines every service with a healthcheck', () => {
    const services = compose.services;
    for (const name of ['postgres', 'redis', 'api', 'worker', 'maildev']) {
      expect(services).toHaveProperty(name);
      const healthcheck = services[name].healthcheck;
      expect({ name, disabled: healthcheck?.disable ?? false }).toEqual({ name, disabled: false });
      expect({ name, test: asText(healthcheck?.test) }).toEqual({
        name,
        test: expect.stringMatching(/\S/),
      });
    }
  });

  it.each(['api', 'worker'])(
    'starts %s with npm scripts that exist in package.json, never `npm start` (it rebuilds)',
    (name) => {
      const command = asText(compose.services[name].command);
      const used = npmRunScripts(command);
      expect(used.length).toBeGreaterThan(0);
      for (const script of used) {
        expect({ script, exists: script in scripts }).toEqual({ script, exists: true });
      }
      expect(command).not.toMatch(/\bnpm\s+start\b/);
    },
  );

  it('runs api as an HTTP service and worker as a Bull worker', () => {
    expect(npmRunScripts(asText(compose.services.api.command))).toEqual(['start:api']);
    expect(npmRunScripts(asText(compose.services.worker.command))).toEqual(['start:worker']);
    expect(asText(compose.services.api.healthcheck?.test)).toContain('/health/live');
  });

  it('runs redis with an append-only file and without eviction, as Bull needs', () => {
    const command = asText(compose.services.redis.command);
    expect(command).toMatch(/\bredis-server\b/);
    expect(command).toMatch(/--appendonly\s+yes\b/);
    expect(command).toMatch(/--maxmemory-policy\s+noeviction\b/);
  });

  it('gives api and worker the production environment and the database URL as a secret', () => {
    for (const name of ['api', 'worker']) {
      const service = compose.services[name];
      expect(service.environment?.NODE_ENV).toBe('production');
      expect(service.environment?.DATABASE_URL).toBeUndefined();
      const file = service.environment?.DATABASE_URL_FILE ?? '';
      const secret = /^\/run\/secrets\/(.+)$/.exec(file)?.[1];
      expect({ name, secret }).toEqual({ name, secret: expect.any(String) });
      expect(service.secrets?.map((s) => s.source)).toContain(secret);
      expect(compose.secrets?.[secret!]?.file).toEqual(expect.any(String));
    }
  });

  it('shares one storage volume between api and worker', () => {
    const storageSource = (name: string) =>
      compose.services[name].volumes
        ?.map((v) => (typeof v === 'string' ? v.split(':') : [v.source, v.target]))
        .find(([, target]) => target === '/app/var/storage')?.[0];
    expect(storageSource('api')).toEqual(expect.any(String));
    expect(storageSource('worker')).toBe(storageSource('api'));
  });

  it('runs two api replicas without both claiming one host port', () => {
    const api = compose.services.api;
    expect(api.deploy?.replicas).toBe(2);
    for (const port of api.ports ?? []) {
      // A published port must be a range at least as wide as the replica count.
      const text = typeof port === 'string' ? port : `${port.published ?? ''}:${port.target}`;
      const published = /(?:^|:)(\d+)(?:-(\d+))?:\d+(?:\/\w+)?$/.exec(text);
      if (published) {
        const [, from, to] = published;
        expect(Number(to ?? from) - Number(from) + 1).toBeGreaterThanOrEqual(2);
      }
    }
  });
});

describe('docker/Dockerfile', () => {
  const steps = instructions(dockerfile);
  const runs = steps.filter((s) => s.keyword === 'RUN').map((s) => s.args);

  it('builds in several stages, each from the node:20 slim image', () => {
    const bases = steps.filter((s) => s.keyword === 'FROM').map((s) => s.args.split(/\s+/)[0]);
    expect(bases.length).toBeGreaterThanOrEqual(2);
    for (const base of bases) {
      expect(base).toMatch(/^node:20(\.\d+)*-(\w+-)?slim$/);
    }
  });

  it('installs with `npm install`, never `npm ci`, and builds with `npm run build`', () => {
    expect(runs.some((r) => /\bnpm\s+install\b/.test(r))).toBe(true);
    expect(runs.filter((r) => /\bnpm\s+ci\b/.test(r))).toEqual([]);
    expect(runs.some((r) => /\bnpm\s+run\s+build\b/.test(r))).toBe(true);
    for (const script of runs.flatMap(npmRunScripts)) {
      expect({ script, exists: script in scripts }).toEqual({ script, exists: true });
    }
  });

  it('leaves development dependencies out of the runtime stage', () => {
    const lastFrom = steps.map((s) => s.keyword).lastIndexOf('FROM');
    const runtimeRuns = steps.slice(lastFrom).filter((s) => s.keyword === 'RUN');
    const omitsDev = /\bnpm\s+(install|prune)\b.*--omit[= ]dev\b/;
    expect(runtimeRuns.some((s) => omitsDev.test(s.args))).toBe(true);
  });

  it('runs as a non-root user', () => {
    const users = steps.filter((s) => s.keyword === 'USER').map((s) => s.args.split(':')[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]).not.toMatch(/^(root|0)$/);
  });

  it('starts with npm scripts that exist in package.json, never `npm start` (it rebuilds)', () => {
    const starts = steps
      .filter((s) => s.keyword === 'CMD' || s.keyword === 'ENTRYPOINT')
      .map((s) => commandText(s.args));
    expect(starts.length).toBeGreaterThan(0);
    const used = starts.flatMap(npmRunScripts);
    expect(used.length).toBeGreaterThan(0);
    for (const script of used) {
      expect({ script, exists: script in scripts }).toEqual({ script, exists: true });
    }
    expect(starts.join('\n')).not.toMatch(/\bnpm\s+start\b/);
  });

  it('checks liveness with node (the slim image has no curl) on /health/live', () => {
    const healthchecks = steps.filter((s) => s.keyword === 'HEALTHCHECK').map((s) => s.args);
    expect(healthchecks).toHaveLength(1);
    expect(healthchecks[0]).toMatch(/CMD\s+\[\s*"node"/);
    expect(healthchecks[0]).toContain('http://127.0.0.1:');
    expect(healthchecks[0]).toContain('/health/live');
  });
});
