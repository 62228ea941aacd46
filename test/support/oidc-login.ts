/**
 * Drives a browser sign-in at the identity provider without a browser: follows redirects with
 * a cookie jar, fills in the login form (fields `login`, `password`), then the consent form.
 */

const MAX_STEPS = 20;

interface Form {
  action: URL;
  fields: URLSearchParams;
  isLogin: boolean;
}

/**
 * Returns the redirect to the client's `redirect_uri` (carrying `code` and `state`, or an
 * `error`) without requesting it, so the test can hand it to the relying party.
 */
export async function driveLogin(
  authorizationUrl: string,
  login: string,
  password: string,
): Promise<URL> {
  const start = new URL(authorizationUrl);
  const redirectUri = start.searchParams.get('redirect_uri');
  const jar = new CookieJar();
  let request: { url: URL; body?: URLSearchParams } = { url: start };
  let loginSubmitted = false;

  for (let step = 0; step < MAX_STEPS; step++) {
    const response = await jar.fetch(request.url, request.body);
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      const next = new URL(location, request.url);
      if (isRedirectToClient(next, start, redirectUri)) {
        return next;
      }
      request = { url: next };
      continue;
    }

    const html = await response.text();
    const form = parseForm(html, request.url);
    if (!form) {
      throw new Error(
        `unexpected page at ${request.url.href} (HTTP ${response.status}): ${html.slice(0, 300)}`,
      );
    }
    if (form.isLogin) {
      // The provider shows its login form again when it did not accept the credentials.
      if (loginSubmitted) {
        throw new Error(`login refused for "${login}" (HTTP ${response.status})`);
      }
      form.fields.set('login', login);
      form.fields.set('password', password);
      loginSubmitted = true;
    }
    request = { url: form.action, body: form.fields };
  }
  throw new Error(`sign-in did not reach the client after ${MAX_STEPS} steps`);
}

function isRedirectToClient(next: URL, start: URL, redirectUri: string | null): boolean {
  if (redirectUri) {
    return `${next.origin}${next.pathname}` === redirectUri.split('?')[0];
  }
  return next.origin !== start.origin;
}

function parseForm(html: string, base: URL): Form | undefined {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) {
    return undefined;
  }
  const fields = new URLSearchParams();
  let isLogin = false;
  for (const [input] of form[2].matchAll(/<input\b[^>]*>/gi)) {
    const name = attribute(input, 'name');
    if (name === 'password') {
      isLogin = true;
    }
    if (name && attribute(input, 'type')?.toLowerCase() === 'hidden') {
      fields.set(name, attribute(input, 'value') ?? '');
    }
  }
  return { action: new URL(attribute(form[1], 'action') ?? base.href, base), fields, isLogin };
}

function attribute(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)')`, 'i').exec(tag);
  return match ? decodeEntities(match[1] ?? match[2]) : undefined;
}

function decodeEntities(value: string): string {
  return value
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))
    .replace(/&#x([0-9a-f]+);/gi, (_, code: string) => String.fromCharCode(parseInt(code, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

interface Cookie {
  name: string;
  value: string;
  path: string;
}

/**
 * Cookies per host, matched by path: oidc-provider sets `_interaction` once per prompt, each on
 * its own path, and expires the previous one in the same response; a path-blind jar could lose
 * the live cookie.
 */
class CookieJar {
  private readonly hosts = new Map<string, Map<string, Cookie>>();

  async fetch(url: URL, form?: URLSearchParams): Promise<Response> {
    const cookies = this.hosts.get(url.host) ?? new Map<string, Cookie>();
    this.hosts.set(url.host, cookies);
    const matching = [...cookies.values()].filter((c) => pathMatches(url.pathname, c.path));
    const headers: Record<string, string> = {};
    if (matching.length > 0) {
      headers.cookie = matching.map((c) => `${c.name}=${c.value}`).join('; ');
    }
    const response = await fetch(url, {
      method: form ? 'POST' : 'GET',
      headers,
      body: form,
      redirect: 'manual',
    });
    for (const line of response.headers.getSetCookie()) {
      store(cookies, line, url);
    }
    return response;
  }
}

function store(cookies: Map<string, Cookie>, line: string, url: URL): void {
  const [pair, ...attributes] = line.split(';');
  const separator = pair.indexOf('=');
  const name = pair.slice(0, separator).trim();
  const value = pair.slice(separator + 1).trim();
  let path = url.pathname.slice(0, url.pathname.lastIndexOf('/')) || '/';
  let expired = value === '';
  for (const attr of attributes) {
    const [key, attrValue = ''] = attr.split('=').map((part) => part.trim());
    switch (key.toLowerCase()) {
      case 'path':
        path = attrValue || '/';
        break;
      case 'max-age':
        expired ||= Number(attrValue) <= 0;
        break;
      case 'expires':
        expired ||= Date.parse(attrValue) <= Date.now();
        break;
    }
  }
  const key = `${name};${path}`;
  if (expired) {
    cookies.delete(key);
  } else {
    cookies.set(key, { name, value, path });
  }
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  return (
    requestPath === cookiePath ||
    (requestPath.startsWith(cookiePath) &&
      (cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/'))
  );
}
