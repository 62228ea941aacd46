import { CLIENT_CLOSED, routeLabel, statusLabel, UNMATCHED_ROUTE } from './http-metrics';

describe('HTTP metric labels', () => {
  it('uses the route template Express matched', () => {
    expect(routeLabel({ route: { path: '/api/v1/jobs/:id' } })).toBe('/api/v1/jobs/:id');
  });

  it.each([
    ['no route matched', undefined],
    ['a route without a string path', { path: /^\/x/ }],
    ['an empty path', { path: '' }],
  ])('labels %s as unmatched', (_case, route) => {
    expect(routeLabel({ route })).toBe(UNMATCHED_ROUTE);
  });

  it('takes the status that was sent, or 499 when the client left before any answer', () => {
    expect(statusLabel({ headersSent: true, statusCode: 404 })).toBe('404');
    expect(statusLabel({ headersSent: false, statusCode: 200 })).toBe(CLIENT_CLOSED);
  });
});
