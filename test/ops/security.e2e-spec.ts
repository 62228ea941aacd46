import type { Server } from 'node:http';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { chromium } from 'playwright-core';
import request from 'supertest';
import { createApi } from '../../src/bootstrap';
import { bearer, demoUser, mintAccessToken } from '../support/auth';
import { createDevice, deviceHeaders, roleHeaders, ROLE_ENV } from '../support/devices';
import { freePort } from '../support/labgate-process';
import { driveLogin } from '../support/oidc-login';
import { countRedisKeys } from '../support/recovery';
import {
  createTestEnvironment,
  startTestApp,
  TestApp,
  type TestEnvironment,
} from '../support/test-app';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

function expectProblem(res: request.Response, status: number) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body.status).toBe(status);
}

function cookie(res: request.Response, name: string): string | undefined {
  return ([] as string[])
    .concat(res.headers['set-cookie'] ?? [])
    .find((c) => c.startsWith(`${name}=`));
}

const isSecure = (setCookie: string | undefined) => /;\s*Secure(;|$)/i.test(setCookie ?? '');

describe('security headers', () => {
  let app: TestApp;
  let http: Server;

  beforeAll(async () => {
    app = await startTestApp();
    http = app.app.getHttpServer();
  });
  afterAll(() => app?.close());

  it('gives API answers, errors included, a policy that lets nothing load or frame them', async () => {
    const token = bearer(await mintAccessToken(app));
    for (const res of [
      await request(http).get('/api/v1/services').set(token).expect(200),
      await request(http).get('/api/v1/me').expect(401),
      await request(http).get('/no/such/path').expect(404),
    ]) {
      const csp = res.headers['content-security-policy'];
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
      expect(res.headers['x-powered-by']).toBeUndefined();
    }
  });

  it('lets Swagger UI load its own scripts and styles and reach the identity provider', async () => {
    const res = await request(http).get('/docs/').expect(200);
    const csp = res.headers['content-security-policy'];
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
    expect(csp).toMatch(/style-src 'self' 'unsafe-inline'/);
    expect(csp).toContain(`connect-src 'self' ${new URL(app.idp.issuer).origin}`);
    // The Authorize popup reports back through window.opener.
    expect(res.headers['cross-origin-opener-policy']).toBeUndefined();
  });

  it('renders Swagger UI in Chromium without a single policy violation', async () => {
    const port = await freePort();
    const docs = await startTestApp({ PUBLIC_URL: `http://127.0.0.1:${port}` });
    await docs.app.listen(port, '127.0.0.1');
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_ARGS,
    });
    try {
      const page = await browser.newPage();
      const violations: string[] = [];
      page.on('console', (message) => {
        if (/Content Security Policy/i.test(message.text())) {
          violations.push(message.text());
        }
      });
      // Also what the console might not say (report-only or eval checks).
      await page.addInitScript({
        content: `document.addEventListener('securitypolicyviolation', (e) =>
          console.error('Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI));`,
      });
      await page.goto(`http://127.0.0.1:${port}/docs`);
      await page
        .locator('.opblock-summary-path[data-path="/api/v1/me"]')
        .waitFor({ timeout: 30_000 });
      await page.locator('.auth-wrapper .btn.authorize').click();
      await page.locator('.auth-container').first().waitFor();
      expect(violations).toEqual([]);
    } finally {
      await browser.close();
      await docs.close();
    }
  }, 60_000);
});

describe('CORS', () => {
  it('answers no cross-origin request by default, preflights included', async () => {
    const app = await startTestApp();
    try {
      const http = app.app.getHttpServer();
      const res = await request(http)
        .get('/api/v1/services')
        .set('Origin', 'https://app.example.org')
        .set(bearer(await mintAccessToken(app)))
        .expect(200);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      const preflight = await request(http)
        .options('/api/v1/jobs')
        .set('Origin', 'https://app.example.org')
        .set('Access-Control-Request-Method', 'POST');
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
      expect(preflight.headers['access-control-allow-methods']).toBeUndefined();
    } finally {
      await app.close();
    }
  });

  describe('with CORS_ORIGINS', () => {
    let app: TestApp;
    let http: Server;
    const origin = 'https://app.example.org';

    beforeAll(async () => {
      app = await startTestApp({ CORS_ORIGINS: `${origin}, https://lab.example.org` });
      http = app.app.getHttpServer();
    });
    afterAll(() => app?.close());

    it('allows a listed origin, with credentials', async () => {
      const res = await request(http)
        .get('/api/v1/me')
        .set('Origin', origin)
        .set(bearer(await mintAccessToken(app)))
        .expect(200);
      expect(res.headers['access-control-allow-origin']).toBe(origin);
      expect(res.headers['access-control-allow-credentials']).toBe('true');
      expect(res.headers.vary).toMatch(/Origin/);
      expect(res.headers['access-control-expose-headers']).toMatch(/X-Request-Id/);
    });

    it('answers a preflight for a listed origin', async () => {
      const res = await request(http)
        .options('/api/v1/jobs')
        .set('Origin', 'https://lab.example.org')
        .set('Access-Control-Request-Method', 'POST')
        .set('Access-Control-Request-Headers', 'authorization,content-type,idempotency-key')
        .expect(204);
      expect(res.headers['access-control-allow-origin']).toBe('https://lab.example.org');
      expect(res.headers['access-control-allow-credentials']).toBe('true');
      expect(res.headers['access-control-allow-methods']).toMatch(/POST/);
      expect(res.headers['access-control-allow-headers']).toMatch(/authorization/);
      expect(res.headers['access-control-max-age']).toBe('600');
    });

    it('does not allow an origin that is not listed', async () => {
      const res = await request(http)
        .get('/api/v1/me')
        .set('Origin', 'https://evil.example.com')
        .set(bearer(await mintAccessToken(app)))
        .expect(200);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      const preflight = await request(http)
        .options('/api/v1/jobs')
        .set('Origin', 'https://evil.example.com')
        .set('Access-Control-Request-Method', 'DELETE');
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    });
  });
});

describe('request body limit', () => {
  it('answers a JSON body over BODY_LIMIT with a 413 problem', async () => {
    const app = await startTestApp({ BODY_LIMIT: '1kb' });
    try {
      const http = app.app.getHttpServer();
      const res = await request(http)
        .post('/api/v1/jobs')
        .set(bearer(await mintAccessToken(app)))
        .send({ service: 'echo', inputs: { message: 'x'.repeat(4096) } });
      expectProblem(res, 413);
      expect(res.body.detail).toMatch(/larger than the 1024-byte limit/);
      // Just under the limit gets past the parser (and is judged on its content).
      const small = await request(http)
        .post('/api/v1/jobs')
        .set(bearer(await mintAccessToken(app)))
        .send({ service: 'no-such-service', inputs: {} });
      expect(small.status).not.toBe(413);
    } finally {
      await app.close();
    }
  });
});

describe('TRUST_PROXY and Secure cookies', () => {
  const loginCookie = async (http: Server, headers: Record<string, string> = {}) =>
    cookie(await request(http).get('/api/v1/auth/login').set(headers).expect(302), 'labgate_login');

  it('ignores X-Forwarded-Proto from an untrusted peer', async () => {
    const app = await startTestApp();
    try {
      const http = app.app.getHttpServer();
      expect(isSecure(await loginCookie(http))).toBe(false);
      expect(isSecure(await loginCookie(http, { 'X-Forwarded-Proto': 'https' }))).toBe(false);
    } finally {
      await app.close();
    }
  });

  it('sets Secure cookies, the session included, when a trusted proxy says https', async () => {
    const app = await startTestApp({ TRUST_PROXY: 'loopback' });
    try {
      const http = app.app.getHttpServer();
      const https = { 'X-Forwarded-Proto': 'https' };
      expect(isSecure(await loginCookie(http))).toBe(false);
      expect(isSecure(await loginCookie(http, https))).toBe(true);

      const start = await request(http).get('/api/v1/auth/login').set(https).expect(302);
      const flow = cookie(start, 'labgate_login')!.split(';')[0];
      const user = demoUser('user');
      const callback = await driveLogin(start.headers.location, user.login, user.password);
      const done = await request(http)
        .get(`${callback.pathname}${callback.search}`)
        .set(https)
        .set('Cookie', flow)
        .expect(302);
      const session = cookie(done, 'labgate_session');
      expect(session).toBeDefined();
      expect(isSecure(session)).toBe(true);
      expect(session).toMatch(/HttpOnly/i);
    } finally {
      await app.close();
    }
  });

  it('sets Secure cookies whenever PUBLIC_URL is https', async () => {
    const app = await startTestApp({ PUBLIC_URL: 'https://labgate.example.org' });
    try {
      expect(isSecure(await loginCookie(app.app.getHttpServer()))).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('takes the client IP from X-Forwarded-For only from a trusted proxy', async () => {
    const limits = { RATE_LIMIT_IP_PER_MINUTE: '1' };
    const anonymous = (http: Server, ip: string) =>
      request(http).get('/api/v1/results').set('X-Forwarded-For', ip);

    const untrusted = await startTestApp(limits);
    try {
      const http = untrusted.app.getHttpServer();
      await anonymous(http, '203.0.113.1').expect(200);
      // Both are the loopback peer: the header is a claim anyone can make.
      expectProblem(await anonymous(http, '203.0.113.2'), 429);
    } finally {
      await untrusted.close();
    }

    const trusted = await startTestApp({ ...limits, TRUST_PROXY: 'loopback' });
    try {
      const http = trusted.app.getHttpServer();
      await anonymous(http, '203.0.113.1').expect(200);
      await anonymous(http, '203.0.113.2').expect(200);
      expectProblem(await anonymous(http, '203.0.113.1'), 429);
    } finally {
      await trusted.close();
    }
  });
});

describe('rate limits', () => {
  let app: TestApp;
  let http: Server;
  let roles: Awaited<ReturnType<typeof roleHeaders>>;

  beforeAll(async () => {
    app = await startTestApp({
      ...ROLE_ENV,
      RATE_LIMIT_USER_PER_MINUTE: '3',
      RATE_LIMIT_IP_PER_MINUTE: '2',
    });
    http = app.app.getHttpServer();
    roles = await roleHeaders(app);
  });
  afterAll(() => app?.close());

  it('limits each user, with a 429 problem and Retry-After, and not the others', async () => {
    for (let i = 0; i < 3; i++) {
      await request(http).get('/api/v1/me').set(roles.user).expect(200);
    }
    const limited = await request(http).get('/api/v1/me').set(roles.user);
    expectProblem(limited, 429);
    expect(limited.body.type).toBe('urn:labgate:problem:rate-limited');
    expect(limited.body.detail).toMatch(/3 per minute/);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Any route: the limit is per user, not per route.
    expectProblem(await request(http).get('/api/v1/services').set(roles.user), 429);
    await request(http).get('/api/v1/me').set(roles.other).expect(200);
  });

  it('limits calls without credentials per IP, and signed-in calls do not count there', async () => {
    // The calls above all came from this address, signed in: the IP budget is untouched.
    await request(http).get('/api/v1/results').expect(200);
    await request(http).get('/api/v1/results').expect(200);
    const limited = await request(http).get('/api/v1/results');
    expectProblem(limited, 429);
    expect(limited.body.detail).toMatch(/each address may make 2 per minute/);
    await request(http).get('/api/v1/me').set(roles.operator).expect(200);
  });

  it('limits each device by its token', async () => {
    const device = await createDevice(http, roles.admin);
    const beat = () =>
      request(http).post('/api/v1/agent/heartbeat').set(deviceHeaders(device.token)).send({});
    for (let i = 0; i < 3; i++) {
      expect((await beat()).status).toBe(200);
    }
    expectProblem(await beat(), 429);
  });

  it('never limits health probes or metrics scrapes', async () => {
    let status = 0;
    for (let i = 0; i < 3 && status !== 429; i++) {
      status = (await request(http).get('/api/v1/results')).status;
    }
    expect(status).toBe(429); // this address is out of budget
    for (let i = 0; i < 5; i++) {
      await request(http).get('/health/live').expect(200);
      await request(http).get('/health/ready').expect(200);
      await request(http).get('/metrics').expect(200);
    }
  });

  it('keeps its counters under the app Redis prefix', async () => {
    expect(await countRedisKeys(`${app.config.redis.prefix}:throttle`)).toBeGreaterThan(0);
  });

  it('does not count at all when the limits are 0', async () => {
    const open = await startTestApp();
    try {
      const token = bearer(await mintAccessToken(open));
      for (let i = 0; i < 20; i++) {
        await request(open.app.getHttpServer()).get('/api/v1/me').set(token).expect(200);
        await request(open.app.getHttpServer()).get('/api/v1/results').expect(200);
      }
      expect(await countRedisKeys(`${open.config.redis.prefix}:throttle`)).toBe(0);
    } finally {
      await open.close();
    }
  });
});

describe('rate limits across API processes', () => {
  let env: TestEnvironment;
  let apis: NestExpressApplication[];

  beforeAll(async () => {
    env = await createTestEnvironment({ RATE_LIMIT_USER_PER_MINUTE: '4' });
    // Two API instances on one Redis prefix, as two replicas behind a load balancer.
    apis = [await createApi(env.config), await createApi(env.config)];
    for (const api of apis) {
      await api.init();
    }
  });
  afterAll(async () => {
    for (const api of apis ?? []) {
      await api.close();
    }
    await env?.dispose();
  });

  it('shares one count: requests split across both hit the limit together', async () => {
    const user = bearer(await mintAccessToken(env, { sub: 'spread-out' }));
    const [a, b] = apis.map((api) => api.getHttpServer());
    for (const http of [a, b, a, b]) {
      await request(http).get('/api/v1/me').set(user).expect(200);
    }
    expectProblem(await request(a).get('/api/v1/me').set(user), 429);
    expectProblem(await request(b).get('/api/v1/me').set(user), 429);
  });

  it('shares the stricter login limit too', async () => {
    const [a, b] = apis.map((api) => api.getHttpServer());
    for (let i = 0; i < 30; i++) {
      await request(i % 2 ? a : b)
        .get('/api/v1/auth/login')
        .expect(302);
    }
    expectProblem(await request(a).get('/api/v1/auth/login'), 429);
    expectProblem(await request(b).get('/api/v1/auth/login'), 429);
  });
});
