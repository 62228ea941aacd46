import { createPrivateKey } from 'node:crypto';
import type { Server } from 'node:http';
import { SignJWT, type JWTPayload } from 'jose';
import request from 'supertest';
import { DEV_USERS } from '../../src/auth/dev-idp/dev-identity-provider';
import type { TestEnvironment } from './test-app';
import { driveLogin } from './oidc-login';

export type DemoLogin = 'admin' | 'operator' | 'user';

export function demoUser(login: DemoLogin) {
  return DEV_USERS.find((u) => u.login === login)!;
}

function setCookie(res: request.Response, name: string): string | undefined {
  const cookies = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
  const cookie = cookies.find((c) => c.startsWith(`${name}=`));
  return cookie?.split(';')[0];
}

/**
 * Signs in through the real identity provider, as a browser would: our login redirect, the
 * provider's login and consent forms, our callback. Returns the session cookie.
 */
export async function loginAs(http: Server, login: DemoLogin, returnTo = '/docs') {
  const start = await request(http).get('/api/v1/auth/login').query({ returnTo }).expect(302);
  const flowCookie = setCookie(start, 'labgate_login')!;
  const user = demoUser(login);
  const callback = await driveLogin(start.headers.location, user.login, user.password);
  const done = await request(http)
    .get(`${callback.pathname}${callback.search}`)
    .set('Cookie', flowCookie)
    .expect(302);
  const session = setCookie(done, 'labgate_session');
  if (!session) {
    throw new Error(`no session cookie after login: ${done.status} ${JSON.stringify(done.body)}`);
  }
  return {
    cookie: session,
    redirect: done.headers.location,
    setCookie: done.headers['set-cookie'],
  };
}

/** Mints an access token signed with the test provider's own key (or another, for attacks). */
export async function mintAccessToken(
  env: TestEnvironment,
  claims: JWTPayload = {},
  options: { alg?: string; kid?: string; key?: Parameters<SignJWT['sign']>[0] } = {},
): Promise<string> {
  const jwk = env.idp.signingKey;
  const key = options.key ?? createPrivateKey({ key: jwk as never, format: 'jwk' });
  const user = demoUser('user');
  return new SignJWT({
    email: user.email,
    name: user.name,
    [env.config.auth.entitlementClaim]: user.entitlements,
    ...claims,
  })
    .setProtectedHeader({ alg: options.alg ?? 'RS256', kid: options.kid ?? jwk.kid })
    .setIssuer(typeof claims.iss === 'string' ? claims.iss : env.idp.issuer)
    .setAudience((claims.aud as string) ?? env.config.oidc.audience)
    .setSubject(claims.sub ?? user.sub)
    .setIssuedAt()
    .setExpirationTime(typeof claims.exp === 'number' ? claims.exp : '5m')
    .sign(key);
}

export function bearer(token: string) {
  return { Authorization: `Bearer ${token}` };
}
