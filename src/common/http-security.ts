import type { CorsOptions } from '@nestjs/common/interfaces/external/cors-options.interface';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import type { AppConfig } from '../config';

/** Where Swagger UI lives (setupSwagger): its page needs a looser policy than JSON answers. */
export const DOCS_PATH = '/docs';

export function isDocsPage(path: string): boolean {
  return path === DOCS_PATH || path.startsWith(`${DOCS_PATH}/`);
}

/** Origin of each URL (`https://idp.example.org`), skipping what does not parse. */
export function originsOf(urls: string[]): string[] {
  const origins = new Set<string>();
  for (const url of urls) {
    try {
      origins.add(new URL(url).origin);
    } catch {
      // an unset endpoint: nothing to allow
    }
  }
  return [...origins];
}

type Middleware = (req: Request, res: Response, next: NextFunction) => void;

/**
 * The headers a helmet middleware sets, worked out once and then set on every answer. Its
 * policies here have no per-request part (no nonce), so the headers are the same each time;
 * helmet itself would run twelve middlewares and build its CSP string anew per request, a
 * tenth of the API's time on small answers (bench/http.ts).
 */
export function fixedHeaders(middleware: Middleware): Middleware {
  const set: Array<[string, string]> = [];
  const removed: string[] = [];
  let called = false;
  const recorder = {
    setHeader: (name: string, value: string | number) => set.push([name, String(value)]),
    removeHeader: (name: string) => removed.push(name),
  };
  middleware(
    { method: 'GET', url: '/', headers: {} } as Request,
    recorder as unknown as Response,
    () => {
      called = true;
    },
  );
  if (!called) {
    throw new Error('the security headers middleware did not finish at once');
  }
  return (_req, res, next) => {
    for (const [name, value] of set) {
      res.setHeader(name, value);
    }
    for (const name of removed) {
      res.removeHeader(name);
    }
    next();
  };
}

/**
 * Security headers (helmet). API answers are data, never pages: their policy allows nothing
 * to load or frame them, which also defuses a stored artifact that a browser would render.
 * Swagger UI at /docs is a page: its own scripts, inline styles, data: images, and fetches to
 * this API and to the identity provider's token endpoint (Authorize, PKCE). It keeps its
 * opener: the login popup reports back to it through `window.opener`.
 */
export function securityHeaders(identityProviderOrigins: string[]) {
  const common = {
    referrerPolicy: { policy: 'no-referrer' as const },
    // A front end on a sibling host (CORS_ORIGINS) may still show artifacts in <img>.
    crossOriginResourcePolicy: { policy: 'same-site' as const },
  };
  const api = fixedHeaders(
    helmet({
      ...common,
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          baseUri: ["'none'"],
          formAction: ["'none'"],
          frameAncestors: ["'none'"],
        },
      },
      xFrameOptions: { action: 'deny' },
    }),
  );
  const docs = helmet({
    ...common,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'", 'data:'],
        connectSrc: ["'self'", ...identityProviderOrigins],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'self'"],
      },
    },
    crossOriginOpenerPolicy: false,
  });
  return (req: Request, res: Response, next: NextFunction) =>
    (isDocsPage(req.path) ? docs : api)(req, res, next);
}

/**
 * CORS for the origins CORS_ORIGINS lists, with credentials (session cookie); none listed:
 * no CORS at all, so browsers keep every other site's pages out.
 */
export function corsOptions(origins: string[]): CorsOptions {
  return {
    origin: origins,
    credentials: true,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    exposedHeaders: [
      'X-Request-Id',
      'Retry-After',
      'ETag',
      'Location',
      'Content-Disposition',
      'WWW-Authenticate',
    ],
    maxAge: 600,
  };
}

/**
 * Mounts the HTTP defaults, before any route: which proxies' X-Forwarded-* are believed
 * (client IP for logs, audit and rate limits; https for Secure cookies), headers, CORS.
 */
export function applyHttpSecurity(
  app: NestExpressApplication,
  config: AppConfig,
  identityProviderUrls: string[],
): void {
  app.set('trust proxy', config.http.trustProxy);
  app.disable('x-powered-by');
  app.use(securityHeaders(originsOf(identityProviderUrls)));
  if (config.http.corsOrigins.length > 0) {
    app.enableCors(corsOptions(config.http.corsOrigins));
  }
}
