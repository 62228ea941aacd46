import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Provider, { errors } from 'oidc-provider';
import type { DevUser } from './dev-users';

type KoaMiddleware = Parameters<Provider['use']>[0];

/** What oidc-provider's consent prompt reports as not yet granted. */
interface ConsentDetails {
  missingOIDCScope?: string[];
  missingOIDCClaims?: string[];
  missingResourceScopes?: Record<string, string[]>;
}

const ROUTE = /^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?$/;
const FORM_LIMIT_BYTES = 16 * 1024;

export function interactionPath(uid: string): string {
  return `/interaction/${uid}`;
}

/**
 * Login and consent pages. oidc-provider's own `devInteractions` accept any login with any
 * password, which would let a test "sign in" as an admin without knowing the secret; these
 * check the password against the demo users, so a refused login is a real outcome.
 */
export function interactionRoutes(provider: Provider, users: readonly DevUser[]): KoaMiddleware {
  return async (ctx, next) => {
    const match = ROUTE.exec(ctx.path);
    if (!match) {
      await next();
      return;
    }
    const [, uid, action] = match;
    ctx.set('Cache-Control', 'no-store');
    try {
      const interaction = await provider.interactionDetails(ctx.req, ctx.res);
      const step = `${ctx.method} ${action ?? 'show'}`;
      if (interaction.uid !== uid) {
        throw new errors.SessionNotFound('interaction cookie belongs to another sign-in');
      }

      if (step === 'GET show' && interaction.prompt.name === 'login') {
        ctx.type = 'html';
        ctx.body = loginPage(uid, users, '', stringParam(interaction.params.login_hint));
      } else if (step === 'GET show' && interaction.prompt.name === 'consent') {
        ctx.type = 'html';
        ctx.body = consentPage(uid, interaction.params);
      } else if (step === 'POST login' && interaction.prompt.name === 'login') {
        const form = await readForm(ctx.req);
        const login = form.get('login') ?? '';
        const user = users.find((u) => u.login === login);
        if (!user || !samePassword(user.password, form.get('password') ?? '')) {
          ctx.status = 401;
          ctx.type = 'html';
          ctx.body = loginPage(uid, users, 'Wrong login or password.', login);
          return;
        }
        const returnTo = await provider.interactionResult(
          ctx.req,
          ctx.res,
          { login: { accountId: user.sub } },
          { mergeWithLastSubmission: false },
        );
        ctx.status = 303;
        ctx.redirect(returnTo);
      } else if (step === 'POST confirm' && interaction.prompt.name === 'consent') {
        const grantId = await saveGrant(provider, interaction);
        const returnTo = await provider.interactionResult(
          ctx.req,
          ctx.res,
          { consent: { grantId } },
          { mergeWithLastSubmission: true },
        );
        ctx.status = 303;
        ctx.redirect(returnTo);
      } else if (step === 'GET abort') {
        const returnTo = await provider.interactionResult(
          ctx.req,
          ctx.res,
          { error: 'access_denied', error_description: 'End-User aborted interaction' },
          { mergeWithLastSubmission: false },
        );
        ctx.status = 303;
        ctx.redirect(returnTo);
      } else {
        ctx.status = 400;
        ctx.type = 'html';
        ctx.body = page('Unexpected step', '<p>Go back to the application and sign in again.</p>');
      }
    } catch (err) {
      // An expired, finished or foreign interaction: a page telling the user to start over is
      // more useful than oidc-provider's generic error.
      if (!(err instanceof errors.SessionNotFound)) {
        throw err;
      }
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = page('Sign-in expired', '<p>Go back to the application and sign in again.</p>');
    }
  };
}

type InteractionDetails = Awaited<ReturnType<Provider['interactionDetails']>>;

/** Grants what the consent prompt says is missing, as oidc-provider's dev interactions do. */
async function saveGrant(provider: Provider, interaction: InteractionDetails): Promise<string> {
  const details = interaction.prompt.details as ConsentDetails;
  const accountId = interaction.session?.accountId;
  const clientId = stringParam(interaction.params.client_id);
  const grant = interaction.grantId
    ? await provider.Grant.find(interaction.grantId)
    : new provider.Grant({ accountId, clientId });
  if (!grant) {
    throw new errors.SessionNotFound('grant of this sign-in is gone');
  }
  if (details.missingOIDCScope) {
    grant.addOIDCScope(details.missingOIDCScope.join(' '));
  }
  if (details.missingOIDCClaims) {
    grant.addOIDCClaims(details.missingOIDCClaims);
  }
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

function samePassword(expected: string, given: string): boolean {
  // Hashing first gives equal lengths, which timingSafeEqual requires.
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(expected), digest(given));
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > FORM_LIMIT_BYTES) {
      throw new errors.InvalidRequest('form too large');
    }
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function stringParam(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function loginPage(uid: string, users: readonly DevUser[], error: string, login: string): string {
  const path = interactionPath(uid);
  const logins = users.map((u) => `<code>${escapeHtml(u.login)}</code>`).join(', ');
  return page(
    'Sign in',
    `${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${path}/login">
  <label>Login <input name="login" value="${escapeHtml(login)}" required autofocus></label>
  <label>Password <input type="password" name="password" required></label>
  <button type="submit">Sign in</button>
</form>
<p>Development identity provider. Demo logins: ${logins}.</p>
<p><a href="${path}/abort">Cancel</a></p>`,
  );
}

function consentPage(uid: string, params: Record<string, unknown>): string {
  const path = interactionPath(uid);
  const scopes = stringParam(params.scope)
    .split(' ')
    .filter(Boolean)
    .map((scope) => `<li>${escapeHtml(scope)}</li>`)
    .join('');
  return page(
    'Authorize',
    `<p><code>${escapeHtml(stringParam(params.client_id))}</code> asks for:</p>
<ul>${scopes}</ul>
<form method="post" action="${path}/confirm">
  <button type="submit" autofocus>Continue</button>
</form>
<p><a href="${path}/abort">Cancel</a></p>`,
  );
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)} · labgate dev IdP</title></head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>`;
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
