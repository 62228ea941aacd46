import { LOG_LEVELS, NODE_ENVS, ROLES } from './config.schema';

export type NodeEnv = (typeof NODE_ENVS)[number];
export type Role = (typeof ROLES)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface DatabaseConfig {
  /** Unset until bootstrap starts the embedded database, which then fills it in. */
  url?: string;
  poolMax: number;
  embedded: boolean;
}

export interface OidcConfig {
  /** Unset until bootstrap starts the development provider, which then fills it in. */
  issuer?: string;
  clientId: string;
  clientSecret?: string;
  swaggerClientId: string;
  audience: string;
  scopes: string;
  clockSkewSeconds: number;
  /** True when labgate runs its own development identity provider. */
  development: boolean;
}

export interface AuthConfig {
  entitlementClaim: string;
  adminEntitlements: string[];
  operatorEntitlements: string[];
  sessionTtlMs: number;
  devIdpPort: number;
}

export interface MailConfig {
  /** Unset: development writes .eml files under VAR_DIR/mail instead of sending. */
  smtpUrl?: string;
  from: string;
}

export interface HttpSecurityConfig {
  /** Unset: /metrics is open. */
  metricsToken?: string;
  /** Origins allowed to call the API from a browser; empty: none. */
  corsOrigins: string[];
  /** Express `trust proxy`: false, true, a hop count, or addresses/subnets. */
  trustProxy: boolean | number | string[];
  /** Requests per minute per user or device (0: no limit). */
  rateLimitUserPerMinute: number;
  /** Requests per minute per IP without credentials (0: no limit). */
  rateLimitIpPerMinute: number;
}

export interface RedisConfig {
  url?: string;
  prefix: string;
}

/**
 * The typed configuration. Injected by class everywhere (`constructor(config: AppConfig)`);
 * only `src/config` reads the environment.
 */
export class AppConfig {
  readonly nodeEnv: NodeEnv;
  readonly role: Role;
  readonly port: number;
  readonly host: string;
  readonly publicUrl: string;
  readonly database: DatabaseConfig;
  readonly redis: RedisConfig;
  readonly oidc: OidcConfig;
  readonly auth: AuthConfig;
  readonly varDir: string;
  /** Absolute directory of the service manifests. */
  readonly servicesDir: string;
  /** Absolute root directory of the local-disk blob storage. */
  readonly storageDir: string;
  readonly maxPayloadFiles: number;
  readonly maxPayloadBytes: number;
  readonly logLevel: LogLevel;
  readonly workerConcurrency: number;
  /** Job views an API process keeps for GET /jobs/:id; 0: none (JobViewCache). */
  readonly jobViewCacheSize: number;
  readonly stalledJobCheckMs: number;
  readonly deviceDownAfterMs: number;
  /** 0: no cap. */
  readonly maxRunningPerUser: number;
  /** Workers create the `local` device when none with runner local exists. */
  readonly localDevice: boolean;
  readonly mail: MailConfig;
  /** Webhooks may target loopback and private addresses (tests, closed networks). */
  readonly webhookAllowPrivate: boolean;
  readonly bodyLimitBytes: number;
  readonly shutdownTimeoutMs: number;
  readonly http: HttpSecurityConfig;

  constructor(values: Omit<AppConfig, 'isProduction' | 'runsApi' | 'runsWorker' | 'with'>) {
    Object.assign(this, values);
  }

  get isProduction(): boolean {
    return this.nodeEnv === 'production';
  }

  get runsApi(): boolean {
    return this.role !== 'worker';
  }

  get runsWorker(): boolean {
    return this.role !== 'api';
  }

  /** A copy with some parts replaced (bootstrap fills in embedded URLs, tests pick a role). */
  with(changes: Partial<Omit<AppConfig, 'isProduction' | 'runsApi' | 'runsWorker' | 'with'>>) {
    return new AppConfig({ ...this, ...changes });
  }
}
