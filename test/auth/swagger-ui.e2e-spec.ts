import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { demoUser } from '../support/auth';
import { launchChromium } from '../support/browser';
import { freePort } from '../support/labgate-process';
import { startTestApp, TestApp } from '../support/test-app';

const TIMEOUT_MS = 60_000;
/** Overwritten by every run: the page as the test left it, to look at when it fails. */
const SCREENSHOT = join(tmpdir(), 'labgate-swagger-ui.png');

describe('Swagger UI at /docs', () => {
  let app: TestApp | undefined;
  let browser: Browser | undefined;
  let baseUrl: string;

  beforeAll(async () => {
    // The provider accepts only `${PUBLIC_URL}/docs/oauth2-redirect.html`, so the browser must
    // reach the API at exactly the address it was configured with.
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    app = await startTestApp({
      PUBLIC_URL: baseUrl,
      ADMIN_ENTITLEMENTS: demoUser('admin').entitlements[1],
    });
    await app.app.listen(port, '127.0.0.1');
    browser = await launchChromium();
  }, TIMEOUT_MS);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  }, TIMEOUT_MS);

  it(
    'signs in with the institution provider (PKCE popup) and calls /api/v1/me as admin',
    async () => {
      const openApi = (await (await fetch(`${baseUrl}/docs-json`)).json()) as {
        components: {
          securitySchemes: {
            oidc: { flows: { authorizationCode: { authorizationUrl: string; tokenUrl: string } } };
          };
        };
      };
      const flow = openApi.components.securitySchemes.oidc.flows.authorizationCode;
      const { authorizationUrl, tokenUrl } = flow;
      expect(authorizationUrl.startsWith(app!.idp.issuer)).toBe(true);
      expect(tokenUrl.startsWith(app!.idp.issuer)).toBe(true);

      const context = await browser!.newContext();
      const page = await context.newPage();
      try {
        await page.goto(`${baseUrl}/docs`);
        await page.locator('.auth-wrapper .btn.authorize').click();

        const oidc = page.locator('.auth-container', { hasText: 'authorizationCode' });
        const scopes = oidc.locator('.scopes input[type=checkbox]');
        await scopes.first().waitFor({ state: 'attached' });
        for (const scope of await scopes.all()) {
          if (!(await scope.isChecked())) {
            // The input is visually hidden; its label is what a user clicks.
            await oidc.locator(`label[for="${await scope.getAttribute('id')}"]`).click();
          }
        }
        expect(await scopes.evaluateAll((boxes) => boxes.map((b) => b.checked))).not.toContain(
          false,
        );

        // Swagger UI exchanges the code with a fetch from the docs page after the popup closes.
        const tokenResponse = page.waitForResponse(
          (res) => res.url() === tokenUrl && res.request().method() === 'POST',
        );
        tokenResponse.catch(() => undefined); // awaited below; a failure before then says why
        const authorizeRequest = context.waitForEvent('request', (req) =>
          req.url().startsWith(`${authorizationUrl}?`),
        );
        const [popup] = await Promise.all([
          context.waitForEvent('page'),
          oidc.locator('.btn.authorize').click(),
        ]);
        // The provider refuses any redirect URI but the registered one, before showing a form.
        const authorize = new URL((await authorizeRequest).url()).searchParams;
        expect(authorize.get('client_id')).toBe('labgate-swagger');
        expect(authorize.get('code_challenge_method')).toBe('S256');
        expect(authorize.get('redirect_uri')).toBe(`${baseUrl}/docs/oauth2-redirect.html`);
        const admin = demoUser('admin');
        await popup.locator('input[name=login]').fill(admin.login);
        await popup.locator('input[name=password]').fill(admin.password);
        const closed = popup.waitForEvent('close');
        await popup.getByRole('button', { name: 'Sign in' }).click();
        await popup.getByRole('button', { name: 'Continue' }).click();
        await closed;

        const token = await tokenResponse;
        expect(token.status()).toBe(200);
        await oidc.locator('.btn.modal-btn', { hasText: 'Logout' }).waitFor();
        await oidc.locator('.btn-done').click();
        await page.locator('.modal-ux').waitFor({ state: 'detached' });

        const me = page.locator('.opblock-get', {
          has: page.locator('.opblock-summary-path[data-path="/api/v1/me"]'),
        });
        await me.locator('.opblock-summary').click();
        await me.locator('.try-out__btn').click();
        const [response] = await Promise.all([
          page.waitForResponse(
            (res) => res.url() === `${baseUrl}/api/v1/me` && res.request().method() === 'GET',
          ),
          me.locator('.btn.execute').click(),
        ]);

        expect(response.request().headers().authorization).toMatch(/^Bearer \S+$/);
        expect(response.status()).toBe(200);
        expect(await response.json()).toMatchObject({
          issuer: app!.idp.issuer,
          subject: 'dev-admin',
          authenticatedBy: 'bearer',
          roles: expect.arrayContaining(['admin']),
        });
        // What the user sees: the live response rendered under the operation.
        const shown = me.locator('.live-responses-table .response');
        await shown.locator('.response-col_status', { hasText: '200' }).waitFor();
        expect(
          await shown.locator('.response-col_description .highlight-code pre').innerText(),
        ).toContain('"admin"');
      } finally {
        await page.screenshot({ path: SCREENSHOT, fullPage: true }).catch(() => undefined);
        await context.close();
      }
    },
    TIMEOUT_MS,
  );
});
