import { tokenMatches } from './metrics-token.guard';

describe(tokenMatches.name, () => {
  it.each([
    ['the token itself', 'scrape-me', true],
    ['no token', undefined, false],
    ['an empty token', '', false],
    ['one character off', 'scrape-mf', false],
    ['a prefix', 'scrape', false],
    ['the token and more', 'scrape-me-too', false],
    ['another case', 'SCRAPE-ME', false],
  ])('%s: %s', (_case, given, matches) => {
    expect(tokenMatches(given, 'scrape-me')).toBe(matches);
  });
});
