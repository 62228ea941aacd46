/** Control characters (CR/LF and the like) have no business in a path we redirect to. */
function hasControlCharacter(value: string): boolean {
  return [...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
}

/**
 * Where to send the browser after login: only a path of this app. Absolute URLs,
 * protocol-relative `//host`, backslash tricks, control characters and repeated or nested
 * parameters are refused, so that the login cannot be turned into an open redirect.
 */
export function safeReturnTo(value: unknown, publicUrl: string): string | undefined {
  if (value === undefined || value === '') {
    return '/docs';
  }
  if (
    // ?returnTo=a&returnTo=b arrives as an array, ?returnTo[x]=a as an object.
    typeof value !== 'string' ||
    !value.startsWith('/') ||
    value.startsWith('//') ||
    value.includes('\\') ||
    hasControlCharacter(value)
  ) {
    return undefined;
  }
  const base = new URL(publicUrl);
  let target: URL;
  try {
    target = new URL(value, base);
  } catch {
    return undefined;
  }
  if (target.origin !== base.origin) {
    return undefined;
  }
  return `${target.pathname}${target.search}${target.hash}`;
}
