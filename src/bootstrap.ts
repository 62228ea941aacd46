import { DynamicModule, INestApplicationContext, RequestMethod } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MikroORM } from '@mikro-orm/postgresql';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Logger as PinoLogger } from 'nestjs-pino';
import type { Request, Response } from 'express';
import pino from 'pino';
import { randomBytes } from 'node:crypto';
import { AppModule } from './app.module';
import type { DevIdpClient } from './auth/dev-idp/dev-identity-provider';
import { DEV_USERS } from './auth/dev-idp/dev-users';
import { OidcClient } from './auth/oidc-client';
import { refuseUnstorableInput, translateBodyErrors } from './common/body-errors';
import { answerClientErrorsWithProblems } from './common/client-errors';
import { applyHttpSecurity } from './common/http-security';
import { assignRequestId, RequestLogging } from './common/logging.module';
import { ProblemFilter } from './common/problem.filter';
import { setupSwagger } from './common/swagger';
import { createValidationPipe } from './common/validation';
import { AppConfig, redactUrl } from './config';
import { EMBEDDED_CONNECTIONS, startEmbeddedPostgres } from './database/embedded-postgres';
import { requestContext } from './database/request-context';
import { HttpMetrics } from './health/http-metrics';
import { findOrStartLocalRedis } from './queue/local-redis';

export interface Runtime {
  /** The configuration with the database and Redis URLs filled in. */
  config: AppConfig;
  /** Stops what `prepareRuntime` started (embedded database, private Redis). */
  stop(): Promise<void>;
}

/** What `prepareRuntime` resolves, and where it says what it chose. */
export interface RuntimeOptions {
  /** Redis for Bull (default true); the CLI's commands that use no queue skip it. */
  redis?: boolean;
  /**
   * The development identity provider when OIDC_ISSUER is unset (default true). The CLI signs
   * nobody in, and the provider's port (DEV_IDP_PORT) may be held by a running `npm start`.
   */
  identityProvider?: boolean;
  /** Default: JSON lines (pino) on stdout at LOG_LEVEL. The CLI keeps its stdout for results. */
  log?: { info(message: string): void; warn(message: string): void };
}

/**
 * Resolves the embedded defaults before Nest starts: a PGlite database when DATABASE_URL is
 * unset and a local Redis when REDIS_URL is unset. Production never gets here without both
 * (the config refuses to load).
 */
export async function prepareRuntime(
  config: AppConfig,
  options: RuntimeOptions = {},
): Promise<Runtime> {
  const log = options.log ?? pino({ level: config.logLevel, name: 'bootstrap' });
  const stops: Array<() => Promise<void>> = [];
  let { database, redis, oidc, auth } = config;
  try {
    if (database.url) {
      log.info(`database: PostgreSQL at ${redactUrl(database.url)}`);
    } else {
      const embedded = await startEmbeddedPostgres(config.varDir);
      stops.push(() => embedded.stop());
      database = {
        url: embedded.url,
        poolMax: Math.min(database.poolMax, EMBEDDED_CONNECTIONS),
        embedded: true,
      };
      log.warn(
        `database: EMBEDDED PostgreSQL (PGlite) with data in ${embedded.dataDir}, serving ` +
          `${embedded.url}; set DATABASE_URL for a real server`,
      );
    }
    if (redis.url) {
      log.info(`redis: ${redactUrl(redis.url)} (prefix "${redis.prefix}")`);
    } else if (options.redis !== false) {
      const local = await findOrStartLocalRedis(config.varDir);
      stops.push(() => local.stop());
      redis = { ...redis, url: local.url };
      log.warn(
        local.private
          ? `redis: started a private redis-server at ${local.url} with data in ${config.varDir}/redis`
          : `redis: using the local Redis at ${local.url}; set REDIS_URL to choose another`,
      );
    }
    if (oidc.issuer) {
      log.info(`identity provider: ${oidc.issuer}`);
    } else if (options.identityProvider !== false) {
      const idp = await startDevelopmentProvider(config);
      stops.push(() => idp.stop());
      oidc = { ...oidc, issuer: idp.issuer, clientSecret: idp.clientSecret, development: true };
      auth = {
        ...auth,
        adminEntitlements: auth.adminEntitlements.length ? auth.adminEntitlements : [DEV_ADMIN],
        operatorEntitlements: auth.operatorEntitlements.length
          ? auth.operatorEntitlements
          : [DEV_OPERATOR],
      };
      log.warn(
        `identity provider: DEVELOPMENT provider at ${idp.issuer} with demo users ` +
          `${DEV_USERS.map((u) => `${u.login}/${u.password}`).join(', ')}; set OIDC_ISSUER for real logins`,
      );
    }
  } catch (err) {
    await stopAll(stops);
    throw err;
  }
  return {
    config: config.with({ database, redis, oidc, auth }),
    stop: () => stopAll(stops),
  };
}

const DEV_ADMIN = DEV_USERS[0].entitlements[1];
const DEV_OPERATOR = DEV_USERS[1].entitlements[1];

type DevIdp = typeof import('./auth/dev-idp/dev-identity-provider');

/** The development identity provider, with labgate's two clients registered on it. */
export async function startDevelopmentProvider(
  config: AppConfig,
  extraClients: DevIdpClient[] = [],
) {
  // Loaded when started only: oidc-provider warns on stderr as it loads (Node 20), and neither
  // a process with an institution's provider nor the CLI (stderr is its messages) uses it.
  /* eslint-disable-next-line @typescript-eslint/no-require-imports */
  const { startDevIdentityProvider } = require('./auth/dev-idp/dev-identity-provider') as DevIdp;
  const clientSecret = randomBytes(24).toString('base64url');
  const idp = await startDevIdentityProvider({
    port: config.auth.devIdpPort,
    audience: config.oidc.audience,
    entitlementClaim: config.auth.entitlementClaim,
    clients: [
      {
        client_id: config.oidc.clientId,
        client_secret: clientSecret,
        redirect_uris: [`${config.publicUrl}/api/v1/auth/callback`],
        post_logout_redirect_uris: [`${config.publicUrl}/docs`],
      },
      {
        client_id: config.oidc.swaggerClientId,
        token_endpoint_auth_method: 'none',
        redirect_uris: [`${config.publicUrl}/docs/oauth2-redirect.html`],
      },
      ...extraClients,
    ],
  });
  return { ...idp, clientSecret };
}

async function stopAll(stops: Array<() => Promise<void>>) {
  for (const stop of stops.reverse()) {
    await stop();
  }
}

/** The HTTP application, configured as it runs in production (tests use this too). */
export async function createApi(
  config: AppConfig,
  module: DynamicModule = AppModule.forRoot(config),
): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(module, {
    bodyParser: false,
    bufferLogs: true,
    abortOnError: false,
  });
  app.useLogger(app.get(PinoLogger));
  answerClientErrorsWithProblems(app.getHttpServer());
  app.use(assignRequestId);
  app.use(app.get(RequestLogging).middleware());
  app.use(app.get(HttpMetrics).middleware());
  const oidc = app.get(OidcClient).metadata;
  applyHttpSecurity(app, config, [oidc.token_endpoint ?? '']);
  // The queue dashboard lives under the API prefix like every admin route; /admin/queues is
  // the address operators know from Bull Board set-ups, so it leads there.
  app.use('/admin/queues', (req: Request, res: Response) =>
    res.redirect(308, `/api/v1/admin/queues${req.url === '/' ? '' : req.url}`),
  );
  app.useBodyParser('json', { limit: config.bodyLimitBytes });
  app.useBodyParser('urlencoded', { limit: config.bodyLimitBytes, extended: true });
  app.use(refuseUnstorableInput);
  app.use(translateBodyErrors);
  // After the body parsers: they call on from the request stream's events, which run outside
  // any context a middleware before them opened.
  app.use(requestContext(app.get(MikroORM)));
  app.setGlobalPrefix('api/v1', {
    exclude: [
      { path: 'health/live', method: RequestMethod.GET },
      { path: 'health/ready', method: RequestMethod.GET },
      { path: 'metrics', method: RequestMethod.GET },
    ],
  });
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new ProblemFilter(config.nodeEnv === 'development'));
  setupSwagger(app, {
    publicUrl: config.publicUrl,
    authorizationUrl: oidc.authorization_endpoint ?? '',
    tokenUrl: oidc.token_endpoint ?? '',
    clientId: config.oidc.swaggerClientId,
    scopes: config.oidc.scopes.split(' '),
  });
  return app;
}

/** A worker: the same modules, Bull processors running, no HTTP listener. */
export async function createWorker(config: AppConfig): Promise<INestApplicationContext> {
  const app = await NestFactory.createApplicationContext(
    AppModule.forRoot(config.with({ role: 'worker' })),
    { bufferLogs: true, abortOnError: false },
  );
  app.useLogger(app.get(PinoLogger));
  return app;
}
