import { corsOptions, isDocsPage, originsOf } from './http-security';

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
