import { safeReturnTo } from './return-to';

const APP = 'https://labgate.example.org';

describe(safeReturnTo.name, () => {
  it('defaults to the API documentation', () => {
    expect(safeReturnTo(undefined, APP)).toBe('/docs');
  });

  it.each(['/docs', '/api/v1/me?x=1#top', '/results/abc'])('accepts the app path %s', (path) => {
    expect(safeReturnTo(path, APP)).toBe(path);
  });

  it.each([
    'https://evil.example.com/',
    '//evil.example.com/x',
    '/\\evil.example.com',
    '\\\\evil.example.com',
    'javascript:alert(1)',
    'evil.example.com',
    '/docs\r\nSet-Cookie: x=1',
  ])('refuses %s', (path) => {
    expect(safeReturnTo(path, APP)).toBeUndefined();
  });

  it('keeps percent-encoded text as a harmless path of this app', () => {
    expect(safeReturnTo('/%0d%0a', APP)).toBe('/%0d%0a');
  });

  it('refuses an absolute URL even to this same app', () => {
    expect(safeReturnTo(`${APP}/docs`, APP)).toBeUndefined();
  });
});
