/**
 * Every environment variable labgate reads, declared once. The loader, `.env.example` and the
 * README's configuration table all come from this list, so they cannot drift apart.
 */
export type VariableKind = 'string' | 'url' | 'int' | 'bool' | 'enum' | 'list' | 'bytes';

export interface VariableSpec {
  name: string;
  kind: VariableKind;
  description: string;
  /** Default as the raw string a user would write; a function may depend on NODE_ENV. */
  default?: string | ((env: { nodeEnv: string }) => string | undefined);
  /** Secrets may also be given as `NAME_FILE` (a path); the file wins over the variable. */
  secret?: boolean;
  values?: readonly string[];
  min?: number;
  max?: number;
}

export const NODE_ENVS = ['development', 'test', 'production'] as const;
export const ROLES = ['api', 'worker', 'all'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const VARIABLES: readonly VariableSpec[] = [
  {
    name: 'NODE_ENV',
    kind: 'enum',
    values: NODE_ENVS,
    default: 'development',
    description: 'development, test or production. Production refuses embedded defaults.',
  },
  {
    name: 'ROLE',
    kind: 'enum',
    values: ROLES,
    default: 'all',
    description: 'What this process runs: the HTTP api, the Bull worker, or all of them.',
  },
  {
    name: 'PORT',
    kind: 'int',
    min: 0,
    max: 65535,
    default: '3000',
    description: 'HTTP port of the API.',
  },
  {
    name: 'HOST',
    kind: 'string',
    default: ({ nodeEnv }) => (nodeEnv === 'production' ? '0.0.0.0' : '127.0.0.1'),
    description: 'Address the API binds to (127.0.0.1 in development, 0.0.0.0 in production).',
  },
  {
    name: 'PUBLIC_URL',
    kind: 'url',
    description: 'External URL of the API, used in links and redirects (default http://HOST:PORT).',
  },
  {
    name: 'DATABASE_URL',
    kind: 'url',
    secret: true,
    description:
      'PostgreSQL connection URL. Unset outside production: an embedded PostgreSQL (PGlite) under VAR_DIR.',
  },
  {
    name: 'DATABASE_POOL_MAX',
    kind: 'int',
    min: 1,
    max: 200,
    default: '10',
    description: 'Most connections the ORM pool opens (capped to 1 with the embedded database).',
  },
  {
    name: 'REDIS_URL',
    kind: 'url',
    secret: true,
    description:
      'Redis for Bull. Unset: 127.0.0.1:6379 if it answers, else a private redis-server under VAR_DIR.',
  },
  {
    name: 'REDIS_PREFIX',
    kind: 'string',
    default: 'labgate',
    description: 'Key prefix of every Bull queue, so that several installations share one Redis.',
  },
  {
    name: 'VAR_DIR',
    kind: 'string',
    default: './var',
    description: 'Directory for local state: embedded database, private Redis, storage, mail.',
  },
  {
    name: 'LOG_LEVEL',
    kind: 'enum',
    values: LOG_LEVELS,
    default: 'info',
    description: 'Least severe level written to the JSON log.',
  },
  {
    name: 'WORKER_CONCURRENCY',
    kind: 'int',
    min: 1,
    max: 256,
    default: '1',
    description: 'Jobs one worker process runs at a time.',
  },
  {
    name: 'JOB_VIEW_CACHE_SIZE',
    kind: 'int',
    min: 0,
    max: 1_000_000,
    default: '10000',
    description:
      'Jobs whose view an API process keeps in memory for GET /jobs/:id (ticket polls), dropped when PostgreSQL notifies a change; 0 reads every time.',
  },
  {
    name: 'SERVICES_DIR',
    kind: 'string',
    default: './services',
    description:
      'Directory of the service manifests (*.yaml, searched recursively), loaded and validated at boot.',
  },
  {
    name: 'STORAGE_DIR',
    kind: 'string',
    description: 'Directory of stored blobs: job inputs and results (default VAR_DIR/storage).',
  },
  {
    name: 'MAX_PAYLOAD_FILES',
    kind: 'int',
    min: 1,
    max: 1_000_000,
    default: '1000',
    description: 'Most entries (files and directories) a tar.gz job payload may hold.',
  },
  {
    name: 'MAX_PAYLOAD_BYTES',
    kind: 'bytes',
    default: '4gb',
    description: 'Most bytes a tar.gz job payload may unpack to, all files together.',
  },
  {
    name: 'DEVICE_DOWN_AFTER_SECONDS',
    kind: 'int',
    min: 2,
    max: 86400,
    default: '60',
    description:
      'A device with no heartbeat for this long is DOWN; its assigned and claimed jobs go back to the queue.',
  },
  {
    name: 'MAX_RUNNING_PER_USER',
    kind: 'int',
    min: 0,
    max: 100000,
    default: '0',
    description:
      'Most jobs one user may have assigned or running at once, over all services (0: no cap).',
  },
  {
    name: 'LOCAL_DEVICE',
    kind: 'bool',
    default: 'true',
    description:
      'A worker creates a device "local" (runner local, every service, WORKER_CONCURRENCY slots) when no local device exists.',
  },
  {
    name: 'STALLED_JOB_CHECK_SECONDS',
    kind: 'int',
    min: 1,
    max: 3600,
    default: '30',
    description:
      'Lock period of a running job: a job whose worker died runs again after one to two periods.',
  },
  {
    name: 'BODY_LIMIT',
    kind: 'bytes',
    default: '1mb',
    description: 'Largest JSON or form body accepted (uploads are streamed and limited per input).',
  },
  {
    name: 'SHUTDOWN_TIMEOUT_SECONDS',
    kind: 'int',
    min: 1,
    max: 3600,
    default: '25',
    description: 'How long SIGTERM waits for in-flight requests and jobs before exiting.',
  },
  {
    name: 'OIDC_ISSUER',
    kind: 'url',
    description:
      'Issuer URL of the institution identity provider. Unset outside production: an embedded development provider with demo users.',
  },
  {
    name: 'OIDC_CLIENT_ID',
    kind: 'string',
    default: 'labgate',
    description: 'Client id of labgate at the identity provider (browser login, introspection).',
  },
  {
    name: 'OIDC_CLIENT_SECRET',
    kind: 'string',
    secret: true,
    description: 'Client secret of labgate at the identity provider.',
  },
  {
    name: 'OIDC_SWAGGER_CLIENT_ID',
    kind: 'string',
    default: 'labgate-swagger',
    description: 'Public client (PKCE, no secret) that Swagger UI logs in with.',
  },
  {
    name: 'OIDC_AUDIENCE',
    kind: 'string',
    default: 'labgate',
    description: 'Audience (`aud`) that bearer access tokens must name.',
  },
  {
    name: 'OIDC_SCOPES',
    kind: 'string',
    default: 'openid email profile eduperson_entitlement',
    description: 'Scopes requested at login.',
  },
  {
    name: 'OIDC_CLOCK_SKEW_SECONDS',
    kind: 'int',
    min: 0,
    max: 300,
    default: '30',
    description: 'Tolerance for exp/nbf/iat of tokens.',
  },
  {
    name: 'ENTITLEMENT_CLAIM',
    kind: 'string',
    default: 'eduperson_entitlement',
    description: 'Claim that carries the user entitlements.',
  },
  {
    name: 'ADMIN_ENTITLEMENTS',
    kind: 'list',
    description:
      'Comma-separated entitlements that make a user admin. Unset: nobody is admin but by admin rules (with the development provider: its demo admin).',
  },
  {
    name: 'OPERATOR_ENTITLEMENTS',
    kind: 'list',
    description:
      'Comma-separated entitlements that make a user operator (controls devices). Unset: operators only by rules (development provider: its demo operator).',
  },
  {
    name: 'SESSION_TTL_HOURS',
    kind: 'int',
    min: 1,
    max: 24 * 90,
    default: '12',
    description: 'Lifetime of a browser session after login.',
  },
  {
    name: 'DEV_IDP_PORT',
    kind: 'int',
    min: 0,
    max: 65535,
    default: '3001',
    description: 'Port of the embedded development identity provider (0: any free port).',
  },
  {
    name: 'SMTP_URL',
    kind: 'url',
    secret: true,
    description:
      'SMTP server for notification mail (smtp://user:pass@host:587, smtps://…). Unset outside production: mails are written as .eml files under VAR_DIR/mail.',
  },
  {
    name: 'MAIL_FROM',
    kind: 'string',
    default: 'labgate <labgate@localhost>',
    description: 'Sender of notification mail.',
  },
  {
    name: 'WEBHOOK_ALLOW_PRIVATE',
    kind: 'bool',
    default: 'false',
    description:
      'Allow webhook URLs that resolve to loopback or private addresses (refused by default: SSRF).',
  },
  {
    name: 'METRICS_TOKEN',
    kind: 'string',
    secret: true,
    description:
      'When set, GET /metrics (Prometheus) requires Authorization: Bearer <this token>. Unset: /metrics is open (keep it off the public network).',
  },
  {
    name: 'CORS_ORIGINS',
    kind: 'list',
    description:
      'Comma-separated origins (https://app.example.org) whose browser pages may call the API. Unset: no cross-origin access.',
  },
  {
    name: 'TRUST_PROXY',
    kind: 'string',
    default: 'false',
    description:
      'Reverse proxies whose X-Forwarded-* headers are believed (client IP, https): false, true, a hop count, or comma-separated addresses/subnets (loopback, 10.0.0.0/8). Session cookies are Secure when the request came over https.',
  },
  {
    name: 'RATE_LIMIT_USER_PER_MINUTE',
    kind: 'int',
    min: 0,
    max: 1_000_000,
    default: '1200',
    description:
      'Most requests one signed-in user (or device) may make per minute, counted across every API process in Redis (0: no limit).',
  },
  {
    name: 'RATE_LIMIT_IP_PER_MINUTE',
    kind: 'int',
    min: 0,
    max: 1_000_000,
    default: '600',
    description:
      'Most requests without credentials one client IP may make per minute, counted in Redis across API processes (0: no limit).',
  },
];
