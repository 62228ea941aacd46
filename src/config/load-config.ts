import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { AppConfig, LogLevel, NodeEnv, Role } from './app-config';
import { VARIABLES, VariableSpec } from './config.schema';

export type Environment = Record<string, string | undefined>;

/** Thrown when the environment is invalid; carries one message per bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** `process.env` over the values of a `.env` file in the working directory, if there is one. */
export function readEnvironment(cwd = process.cwd()): Environment {
  const dotenvPath = resolve(cwd, '.env');
  const fromFile = existsSync(dotenvPath) ? parseDotenv(readFileSync(dotenvPath)) : {};
  return { ...fromFile, ...process.env };
}

const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

type Parsed = string | number | boolean | string[];

function parseValue(spec: VariableSpec, raw: string): Parsed {
  const where = spec.name;
  switch (spec.kind) {
    case 'int': {
      if (!/^-?\d+$/.test(raw)) {
        throw new Error(`${where}: "${raw}" is not a whole number`);
      }
      const n = Number(raw);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new Error(`${where}: ${n} is outside ${spec.min ?? '-∞'}..${spec.max ?? '∞'}`);
      }
      return n;
    }
    case 'bool': {
      const v = raw.toLowerCase();
      if (['true', '1', 'yes'].includes(v)) {
        return true;
      }
      if (['false', '0', 'no'].includes(v)) {
        return false;
      }
      throw new Error(`${where}: "${raw}" is not a boolean (true or false)`);
    }
    case 'enum':
      if (!spec.values?.includes(raw)) {
        throw new Error(`${where}: "${raw}" is not one of ${spec.values?.join(', ')}`);
      }
      return raw;
    case 'url':
      try {
        new URL(raw);
      } catch {
        throw new Error(`${where}: "${redactUrl(raw)}" is not a valid URL`);
      }
      return raw;
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    case 'bytes': {
      const m = /^(\d+)\s*(b|kb|mb|gb)?$/i.exec(raw.trim());
      if (!m) {
        throw new Error(`${where}: "${raw}" is not a size (e.g. 512kb, 10mb, 1gb)`);
      }
      return Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()];
    }
    default:
      return raw;
  }
}

/**
 * Express's own parser of `trust proxy` address lists (a dependency of express). Used to
 * check the list here, so that a bad entry is one line of the configuration's message rather
 * than a TypeError thrown from inside Express at boot.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const proxyAddr = require('proxy-addr') as { compile(addresses: string[]): unknown };

const TRUST_PROXY_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

/** `TRUST_PROXY` as Express takes it: a boolean, a hop count, or a list of addresses/subnets. */
export function parseTrustProxy(raw: string): boolean | number | string[] {
  const value = raw.trim().toLowerCase();
  if (['false', '0', 'no', ''].includes(value)) {
    return false;
  }
  if (['true', 'yes'].includes(value)) {
    return true;
  }
  if (/^\d+$/.test(value)) {
    return Number(value);
  }
  const addresses = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const address of addresses) {
    try {
      proxyAddr.compile([address]);
    } catch {
      throw new Error(
        `TRUST_PROXY: "${address}" is not true, false, a hop count, an IP address, a subnet ` +
          `(10.0.0.0/8, fd00::/8) or one of ${TRUST_PROXY_NAMES.join(', ')}`,
      );
    }
  }
  return addresses;
}

/** Hides the password of a connection URL so that it can be logged or shown in an error. */
export function redactUrl(raw: string): string {
  return raw.replace(/\/\/([^:/@]+):([^@]+)@/, '//$1:***@');
}

/**
 * Builds the typed configuration from an environment. Every problem is collected, so a bad
 * deployment learns everything that is wrong in one boot, not one variable at a time.
 */
export function loadConfig(
  env: Environment,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): AppConfig {
  const problems: string[] = [];
  const values = new Map<string, Parsed | undefined>();
  const nodeEnv = env.NODE_ENV && env.NODE_ENV !== '' ? env.NODE_ENV : 'development';

  for (const spec of VARIABLES) {
    let raw = env[spec.name];
    const fileVar = `${spec.name}_FILE`;
    if (spec.secret && env[fileVar]) {
      try {
        raw = readFile(env[fileVar]).replace(/\r?\n$/, '');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        problems.push(`${fileVar}: cannot read "${env[fileVar]}" (${code})`);
        continue;
      }
    }
    if (raw === undefined || raw === '') {
      raw = typeof spec.default === 'function' ? spec.default({ nodeEnv }) : spec.default;
    }
    if (raw === undefined) {
      values.set(spec.name, undefined);
      continue;
    }
    try {
      values.set(spec.name, parseValue(spec, raw));
    } catch (err) {
      problems.push((err as Error).message);
    }
  }

  let trustProxy: ReturnType<typeof parseTrustProxy> = false;
  try {
    trustProxy = parseTrustProxy((values.get('TRUST_PROXY') as string | undefined) ?? 'false');
  } catch (err) {
    problems.push((err as Error).message);
  }

  if (nodeEnv === 'production') {
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'OIDC_ISSUER']) {
      if (!problems.some((p) => p.startsWith(name)) && values.get(name) === undefined) {
        problems.push(
          `${name}: required when NODE_ENV=production (embedded defaults are for development only)`,
        );
      }
    }
  }
  if (problems.length > 0) {
    throw new ConfigError(problems);
  }

  const get = <T extends Parsed | undefined>(name: string) => values.get(name) as T;
  const host = get<string>('HOST');
  const port = get<number>('PORT');
  const shownHost = host === '0.0.0.0' ? '127.0.0.1' : host;
  return new AppConfig({
    nodeEnv: get<NodeEnv>('NODE_ENV'),
    role: get<Role>('ROLE'),
    port,
    host,
    publicUrl: (get<string>('PUBLIC_URL') ?? `http://${shownHost}:${port}`).replace(/\/+$/, ''),
    database: {
      url: get<string | undefined>('DATABASE_URL'),
      poolMax: get<number>('DATABASE_POOL_MAX'),
      embedded: false,
    },
    redis: { url: get<string | undefined>('REDIS_URL'), prefix: get<string>('REDIS_PREFIX') },
    oidc: {
      issuer: get<string | undefined>('OIDC_ISSUER')?.replace(/\/+$/, ''),
      clientId: get<string>('OIDC_CLIENT_ID'),
      clientSecret: get<string | undefined>('OIDC_CLIENT_SECRET'),
      swaggerClientId: get<string>('OIDC_SWAGGER_CLIENT_ID'),
      audience: get<string>('OIDC_AUDIENCE'),
      scopes: get<string>('OIDC_SCOPES'),
      clockSkewSeconds: get<number>('OIDC_CLOCK_SKEW_SECONDS'),
      development: false,
    },
    auth: {
      entitlementClaim: get<string>('ENTITLEMENT_CLAIM'),
      adminEntitlements: get<string[] | undefined>('ADMIN_ENTITLEMENTS') ?? [],
      operatorEntitlements: get<string[] | undefined>('OPERATOR_ENTITLEMENTS') ?? [],
      sessionTtlMs: get<number>('SESSION_TTL_HOURS') * 3600_000,
      devIdpPort: get<number>('DEV_IDP_PORT'),
    },
    varDir: resolve(get<string>('VAR_DIR')),
    servicesDir: resolve(get<string>('SERVICES_DIR')),
    storageDir: resolve(
      get<string | undefined>('STORAGE_DIR') ?? join(get<string>('VAR_DIR'), 'storage'),
    ),
    maxPayloadFiles: get<number>('MAX_PAYLOAD_FILES'),
    maxPayloadBytes: get<number>('MAX_PAYLOAD_BYTES'),
    logLevel: get<LogLevel>('LOG_LEVEL'),
    workerConcurrency: get<number>('WORKER_CONCURRENCY'),
    jobViewCacheSize: get<number>('JOB_VIEW_CACHE_SIZE'),
    stalledJobCheckMs: get<number>('STALLED_JOB_CHECK_SECONDS') * 1000,
    deviceDownAfterMs: get<number>('DEVICE_DOWN_AFTER_SECONDS') * 1000,
    maxRunningPerUser: get<number>('MAX_RUNNING_PER_USER'),
    localDevice: get<boolean>('LOCAL_DEVICE'),
    mail: {
      smtpUrl: get<string | undefined>('SMTP_URL'),
      from: get<string>('MAIL_FROM'),
    },
    webhookAllowPrivate: get<boolean>('WEBHOOK_ALLOW_PRIVATE'),
    bodyLimitBytes: get<number>('BODY_LIMIT'),
    shutdownTimeoutMs: get<number>('SHUTDOWN_TIMEOUT_SECONDS') * 1000,
    http: {
      metricsToken: get<string | undefined>('METRICS_TOKEN'),
      corsOrigins: get<string[] | undefined>('CORS_ORIGINS') ?? [],
      trustProxy,
      rateLimitUserPerMinute: get<number>('RATE_LIMIT_USER_PER_MINUTE'),
      rateLimitIpPerMinute: get<number>('RATE_LIMIT_IP_PER_MINUTE'),
    },
  });
}
