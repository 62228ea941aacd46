import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { errors, type ClientMetadata, type Configuration } from 'oidc-provider';
import { interactionPath, interactionRoutes } from './dev-idp-interactions';
import { DEV_USERS, type DevUser } from './dev-users';

export { DEV_USERS, type DevUser } from './dev-users';

export interface DevIdpClient {
  client_id: string;
  client_secret?: string;
  redirect_uris: string[];
  post_logout_redirect_uris?: string[];
  /** oidc-provider's default is `client_secret_basic`; public clients (no secret) use `none`. */
  token_endpoint_auth_method?: 'client_secret_basic' | 'client_secret_post' | 'none';
  /**
   * `jwt` (default): access tokens are JWTs for the API (`aud` = the audience); oidc-provider
   * cannot introspect them and the userinfo endpoint refuses them. `opaque`: access tokens are
   * meant for the userinfo endpoint and introspection, and carry no audience.
   */
  accessTokenFormat?: 'jwt' | 'opaque';
}

export interface DevIdpOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (default) picks any free port. */
  port?: number;
  clients: DevIdpClient[];
  /** The `aud` of JWT access tokens. */
  audience: string;
  /** Default `eduperson_entitlement`; also the name of the scope that releases it. */
  entitlementClaim?: string;
  users?: readonly DevUser[];
  accessTokenTtlSeconds?: number;
}

export interface DevIdentityProvider {
  /** e.g. `http://127.0.0.1:PORT` */
  issuer: string;
  /** The private RS256 key the provider signs with, so tests can mint their own tokens. */
  signingKey: JWK;
  stop(): Promise<void>;
}

const SESSION_TTL_SECONDS = 8 * 60 * 60;

export async function startDevIdentityProvider(
  options: DevIdpOptions,
): Promise<DevIdentityProvider> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer();
  await listen(server, options.port ?? 0, host);
  // The issuer names the port, so the provider can only be built once the port is known.
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  try {
    const signingKey = await newSigningKey();
    const provider = new Provider(issuer, configuration(options, signingKey));
    provider.use(interactionRoutes(provider, options.users ?? DEV_USERS));
    const handle = provider.callback();
    server.on('request', (req, res) => {
      void handle(req, res);
    });
    return { issuer, signingKey, stop: () => close(server) };
  } catch (err) {
    await close(server);
    throw err;
  }
}

function configuration(options: DevIdpOptions, signingKey: JWK): Configuration {
  const users = options.users ?? DEV_USERS;
  const entitlementClaim = options.entitlementClaim ?? 'eduperson_entitlement';
  const accessTokenTtl = options.accessTokenTtlSeconds ?? 3600;
  const { audience } = options;
  // Resource indicators must be absolute URIs; a bare audience such as `labgate` is not one, so
  // it gets a URN as its indicator and stays the token's `aud`.
  const resource =
    URL.canParse(audience) && !audience.includes('#')
      ? audience
      : `urn:labgate:dev-idp:resource:${encodeURIComponent(audience)}`;
  const opaqueClients = new Set(
    options.clients.filter((c) => c.accessTokenFormat === 'opaque').map((c) => c.client_id),
  );
  const findUser = (sub: string) => users.find((u) => u.sub === sub);

  return {
    clients: options.clients.map(clientMetadata),
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      [entitlementClaim]: [entitlementClaim],
    },
    // The ID token carries every granted claim, so labgate needs no userinfo call at sign-in.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    interactions: { url: (_ctx, interaction) => interactionPath(interaction.uid) },
    findAccount: (_ctx, sub) => {
      const user = findUser(sub);
      return user && { accountId: user.sub, claims: () => userClaims(user, entitlementClaim) };
    },
    // An API must be able to authorize from the access token alone, without calling back.
    extraTokenClaims: (_ctx, token) => {
      const user = 'accountId' in token ? findUser(token.accountId) : undefined;
      if (!user) {
        return undefined;
      }
      return { [entitlementClaim]: user.entitlements, email: user.email, name: user.name };
    },
    clientBasedCORS: (_ctx, origin, client) =>
      client.redirectUris?.some((uri) => URL.parse(uri)?.origin === origin) ?? false,
    ttl: {
      AccessToken: accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 10 * 60,
      Session: SESSION_TTL_SECONDS,
      Grant: SESSION_TTL_SECONDS,
    },
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true, allowedPolicy: confidentialOrOwnToken },
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
      },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, client) =>
          opaqueClients.has(client.clientId) ? undefined : resource,
        // Without this, a code granted with `openid` yields a userinfo-only opaque token unless
        // the client repeats `resource` at the token endpoint, which ordinary RPs do not do.
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== resource && indicator !== audience) {
            throw new errors.InvalidTarget();
          }
          return {
            scope: `openid email profile ${entitlementClaim}`,
            audience,
            accessTokenFormat: 'jwt',
            accessTokenTTL: accessTokenTtl,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  };
}

function clientMetadata(client: DevIdpClient): ClientMetadata {
  return {
    client_id: client.client_id,
    client_secret: client.client_secret,
    redirect_uris: client.redirect_uris,
    post_logout_redirect_uris: client.post_logout_redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method:
      client.token_endpoint_auth_method ?? (client.client_secret ? 'client_secret_basic' : 'none'),
  };
}

function userClaims(user: DevUser, entitlementClaim: string) {
  // oidc-provider releases only the claims of granted scopes (see `claims` above).
  return {
    sub: user.sub,
    email: user.email,
    email_verified: true,
    name: user.name,
    [entitlementClaim]: user.entitlements,
  };
}

type AllowedPolicy = NonNullable<
  NonNullable<NonNullable<Configuration['features']>['introspection']>['allowedPolicy']
>;

/** oidc-provider's default rule, made explicit: public clients see only their own tokens. */
const confidentialOrOwnToken: AllowedPolicy = (ctx, client, token) =>
  client.clientAuthMethod !== 'none' || token.clientId === client.clientId;

async function newSigningKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    // Keep-alive sockets (fetch keeps them) would otherwise hold close() open.
    server.closeAllConnections();
  });
}
