import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import { corsOptions, fixedHeaders, isDocsPage, originsOf } from './http-security';

type Middleware = (req: Request, res: Response, next: NextFunction) => void;

/** The headers of a real answer from a loopback server that runs `middleware` first. */
async function headersThrough(middleware: Middleware): Promise<Record<string, string>> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) =>
    middleware(req as Request, res as unknown as Response, () => res.end('{}')),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`);
    await res.text();
    const headers = Object.fromEntries(res.headers);
    delete headers.date;
    return headers;
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

describe(fixedHeaders.name, () => {
  it("sets exactly the headers helmet sets, for the API's policy and for a default one", async () => {
    const configs = [
      helmet({
        referrerPolicy: { policy: 'no-referrer' },
        crossOriginResourcePolicy: { policy: 'same-site' },
        contentSecurityPolicy: {
          useDefaults: false,
          directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
        },
        xFrameOptions: { action: 'deny' },
      }),
      helmet(),
    ];
    for (const config of configs) {
      const expected = await headersThrough(config);
      expect(Object.keys(expected)).toContain('content-security-policy');
      expect(await headersThrough(fixedHeaders(config))).toEqual(expected);
    }
  });

  it('refuses a middleware that does not call on at once (its headers could not be known)', () => {
    expect(() => fixedHeaders((_req, _res, next) => void setImmediate(next))).toThrow(
      /did not finish at once/,
    );
  });
});

describe('HTTP security settings', () => {
  it.each([
    ['/docs', true],
    ['/docs/', true],
    ['/docs/oauth2-redirect.html', true],
    ['/docs-json', false],
    ['/docsx', false],
    ['/api/v1/docs', false],
  ])('treats %s as a Swagger UI page: %s', (path, page) => {
    expect(isDocsPage(path)).toBe(page);
  });

  it('allows the origins of the identity provider endpoints, once each', () => {
    expect(
      originsOf([
        'https://idp.example.org/token',
        'https://idp.example.org/auth',
        'http://127.0.0.1:4000/x',
        '',
      ]),
    ).toEqual(['https://idp.example.org', 'http://127.0.0.1:4000']);
  });

  it('gives listed origins credentialed CORS and exposes the headers clients need', () => {
    const options = corsOptions(['https://app.example.org']);
    expect(options.origin).toEqual(['https://app.example.org']);
    expect(options.credentials).toBe(true);
    expect(options.exposedHeaders).toEqual(expect.arrayContaining(['X-Request-Id', 'Retry-After']));
  });
});
