import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';

export interface SwaggerLogin {
  /** The app's external URL: Swagger UI's OAuth2 redirect must be the registered one. */
  publicUrl: string;
  authorizationUrl: string;
  tokenUrl: string;
  clientId: string;
  scopes: string[];
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head'] as const;

/** Every operation states its security: none for `@Public()`, else any of the schemes. */
function applySecurity(document: OpenAPIObject): void {
  for (const path of Object.values(document.paths)) {
    for (const method of HTTP_METHODS) {
      const operation = path[method] as
        (Record<string, unknown> & { security?: unknown[] }) | undefined;
      if (!operation) {
        continue;
      }
      operation.security = operation['x-public']
        ? []
        : operation['x-device']
          ? [{ device: [] }]
          : [{ oidc: [] }, { bearer: [] }, { session: [] }];
    }
  }
}

export function buildOpenApiDocument(app: INestApplication, login: SwaggerLogin): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('labgate')
    .setDescription(
      'Compute services of the institution: submit jobs with typed inputs, follow them, ' +
        'fetch results. Errors are application/problem+json (RFC 9457). Sign in with the ' +
        'Authorize button (institution login), or send `Authorization: Bearer` with an access ' +
        'token or a personal access token (`lgp_…`, from POST /api/v1/me/tokens).',
    )
    .setVersion('1')
    .addOAuth2(
      {
        type: 'oauth2',
        description: 'Institution login (authorization code + PKCE)',
        flows: {
          authorizationCode: {
            authorizationUrl: login.authorizationUrl,
            tokenUrl: login.tokenUrl,
            scopes: Object.fromEntries(login.scopes.map((s) => [s, s])),
          },
        },
      },
      'oidc',
    )
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', description: 'OIDC access token or lgp_… token' },
      'bearer',
    )
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', description: 'Device token (lgd_…), agent routes only' },
      'device',
    )
    .addCookieAuth('labgate_session', { type: 'apiKey', in: 'cookie' }, 'session')
    .build();
  const document = SwaggerModule.createDocument(app, config);
  applySecurity(document);
  return document;
}

/** Swagger UI at /docs (Authorize logs in with PKCE), the OpenAPI 3 document at /docs-json. */
export function setupSwagger(app: INestApplication, login: SwaggerLogin): OpenAPIObject {
  const document = buildOpenApiDocument(app, login);
  SwaggerModule.setup('docs', app, document, {
    jsonDocumentUrl: 'docs-json',
    customSiteTitle: 'labgate API',
    swaggerOptions: {
      persistAuthorization: true,
      // Without it Swagger UI derives the redirect from the page path, which differs between
      // /docs and /docs/ and would not match the redirect URI registered at the provider.
      oauth2RedirectUrl: `${login.publicUrl}/docs/oauth2-redirect.html`,
      initOAuth: {
        clientId: login.clientId,
        usePkceWithAuthorizationCodeGrant: true,
        scopes: login.scopes,
      },
    },
  });
  return document;
}
