import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
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
  entrypoint?: string | string[];
  profiles?: string[];
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

/** What an operator puts in docker/.env: the site settings compose insists on. */
const SITE = {
  PUBLIC_URL: 'https://labgate.example.org',
  OIDC_ISSUER: 'https://login.example.org',
};

/** `docker-compose config`: schema validation plus the resolved file, or a failure that says why. */
function resolveCompose(site: Record<string, string> = SITE): ResolvedCompose {
  let out: string;
  try {
    out = execFileSync('docker-compose', ['-f', composeFile, 'config'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      // Only these: a docker/.env or variables of the shell running the tests must not count.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...site },
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

describe('docker/compose.yml: settings, secrets, CLI, reverse proxy', () => {
  let compose: ResolvedCompose;

  beforeAll(() => {
    compose = resolveCompose();
  }, 30_000);

  it.each(['PUBLIC_URL', 'OIDC_ISSUER'])(
    'stops with a message when %s (required in production) is not set',
    (name) => {
      const site: Record<string, string> = { ...SITE };
      delete site[name];
      expect(() => resolveCompose(site)).toThrow(new RegExp(`set ${name}, `));
    },
  );

  it('gives api and worker the site settings and every secret as a file under /run/secrets', () => {
    for (const name of ['api', 'worker']) {
      const env = compose.services[name].environment ?? {};
      expect(env).toMatchObject({ ...SITE, TRUST_PROXY: '1' });
      for (const secret of ['DATABASE_URL', 'OIDC_CLIENT_SECRET', 'METRICS_TOKEN', 'SMTP_URL']) {
        expect({ name, secret, value: env[secret] }).toEqual({ name, secret, value: undefined });
        const source = /^\/run\/secrets\/(.+)$/.exec(env[`${secret}_FILE`] ?? '')?.[1];
        expect({ name, secret, declared: compose.secrets?.[source ?? '']?.file }).toEqual({
          name,
          secret,
          declared: expect.stringMatching(/secrets\/\w+\.txt$/),
        });
        expect(compose.services[name].secrets?.map((s) => s.source)).toContain(source);
      }
    }
  });

  it('has an example for every secret file, and the development mail one names maildev', () => {
    for (const [name, secret] of Object.entries(compose.secrets ?? {})) {
      const example = join(root, 'docker', 'secrets', `${name}.example`);
      expect({ name, file: secret.file, example: existsSync(example) }).toEqual({
        name,
        file: expect.stringContaining(`secrets/${name}.txt`),
        example: true,
      });
    }
    const smtp = readFileSync(join(root, 'docker', 'secrets', 'smtp_url.example'), 'utf8');
    expect(smtp.trim()).toBe('smtp://maildev:1025');
    expect(compose.services.maildev.profiles).toEqual(['dev']);
  });

  it('offers the CLI as a one-off service running the npm script, never started by `up`', () => {
    const cli = compose.services.cli;
    expect(cli.profiles).toEqual(['cli']);
    expect(asText(cli.entrypoint)).toBe('npm run --silent cli --');
    expect('cli' in scripts).toBe(true);
    expect(cli.environment).toEqual(compose.services.api.environment);
  });

  it('publishes the api replicas on the loopback ports docker/nginx.conf proxies to', () => {
    const ports = (compose.services.api.ports ?? []).map((p) =>
      typeof p === 'string' ? p : `${p.published ?? ''}:${p.target}`,
    );
    const range = ports
      .map((p) => /^127\.0\.0\.1:(\d+)-(\d+):3000/.exec(p))
      .find((m) => m !== null);
    expect(range).toBeDefined();
    const [, from, to] = range!;
    const published = Array.from({ length: Number(to) - Number(from) + 1 }, (_, i) =>
      String(Number(from) + i),
    );
    const nginx = readFileSync(join(root, 'docker', 'nginx.conf'), 'utf8');
    const upstream = [...nginx.matchAll(/^\s*server 127\.0\.0\.1:(\d+)\b/gm)].map((m) => m[1]);
    expect(upstream).toEqual(published);
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

  it.each([
    ['cli', ['token:create', '--name', 'a b']],
    ['agent', ['--url', 'https://labgate.example.org', '--token', 'lgd_x y']],
  ])(
    'runs `npm run %s` from dist/ in the runtime stage, where ts-node is pruned',
    (script, args) => {
      const lastFrom = steps.map((s) => s.keyword).lastIndexOf('FROM');
      const copies = steps
        .slice(lastFrom)
        .filter((s) => s.keyword === 'COPY')
        .map((s) => s.args);
      expect(copies).toContainEqual(expect.stringMatching(/--from=build \/app\/dist \.\/dist$/));
      // The image's layout: package.json, production node_modules (no ts-node), dist/.
      const image = mkdtempSync(join(tmpdir(), 'labgate-image-'));
      try {
        cpSync(join(root, 'package.json'), join(image, 'package.json'));
        mkdirSync(join(image, 'node_modules'));
        mkdirSync(join(image, 'dist', 'src', script), { recursive: true });
        writeFileSync(
          join(image, 'dist', 'src', script, 'main.js'),
          'process.stdout.write(JSON.stringify(process.argv.slice(2)))',
        );
        const out = execFileSync('npm', ['run', '--silent', script, '--', ...args], {
          cwd: image,
          encoding: 'utf8',
          env: { PATH: process.env.PATH, HOME: process.env.HOME },
        });
        expect(JSON.parse(out)).toEqual(args);
      } finally {
        rmSync(image, { recursive: true, force: true });
      }
    },
  );

  it('has `nest build` compile every entry point a script runs from dist/', () => {
    // nest build compiles the files of nest-cli.json's tsconfig; `tsc --showConfig` lists them.
    const nestCli = JSON.parse(readFileSync(join(root, 'nest-cli.json'), 'utf8')) as {
      compilerOptions: { tsConfigPath: string };
    };
    const tsc = require.resolve('typescript/bin/tsc');
    const build = JSON.parse(
      execFileSync(
        process.execPath,
        [tsc, '-p', nestCli.compilerOptions.tsConfigPath, '--showConfig'],
        {
          cwd: root,
          encoding: 'utf8',
        },
      ),
    ) as { files: string[]; compilerOptions: { outDir: string; rootDir: string } };
    const compiled = new Set(
      build.files.map((file) =>
        join(
          build.compilerOptions.outDir,
          relative(build.compilerOptions.rootDir, file).replace(/\.ts$/, '.js'),
        ),
      ),
    );
    const entries = Object.entries(scripts).flatMap(([name, text]) =>
      [...text.matchAll(/\bnode\s+(dist\/\S+\.js)/g)].map((m) => ({ name, entry: m[1] })),
    );
    expect(entries.map((e) => e.name)).toEqual(expect.arrayContaining(['cli', 'agent']));
    for (const { name, entry } of entries) {
      expect({ name, entry, compiled: compiled.has(entry) }).toEqual({
        name,
        entry,
        compiled: true,
      });
    }
  });

  it('checks liveness with node (the slim image has no curl) on /health/live', () => {
    const healthchecks = steps.filter((s) => s.keyword === 'HEALTHCHECK').map((s) => s.args);
    expect(healthchecks).toHaveLength(1);
    expect(healthchecks[0]).toMatch(/CMD\s+\[\s*"node"/);
    expect(healthchecks[0]).toContain('http://127.0.0.1:');
    expect(healthchecks[0]).toContain('/health/live');
  });
});
