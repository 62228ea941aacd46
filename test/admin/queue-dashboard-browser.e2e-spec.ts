import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { demoUser, type DemoLogin } from '../support/auth';
import { createDevice, roleHeaders, ROLE_ENV } from '../support/devices';
import { launchChromium } from '../support/browser';
import { freePort } from '../support/labgate-process';
import { startTestApp, TestApp } from '../support/test-app';

const TIMEOUT_MS = 60_000;
/** Overwritten by every run: the page as the test left it, to look at when it fails. */
const SCREENSHOT = join(tmpdir(), 'labgate-queue-dashboard.png');

describe('queue dashboard in a browser', () => {
  let app: TestApp | undefined;
  let browser: Browser | undefined;
  let baseUrl: string;

  beforeAll(async () => {
    // The provider redirects only to `${PUBLIC_URL}/api/v1/auth/callback`, so the browser must
    // reach the API at exactly the address it was configured with.
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    app = await startTestApp({
      ...ROLE_ENV,
      ADMIN_ENTITLEMENTS: `${ROLE_ENV.ADMIN_ENTITLEMENTS},${demoUser('admin').entitlements[1]}`,
      PUBLIC_URL: baseUrl,
      ROLE: 'api',
      LOCAL_DEVICE: 'false',
    });
    await app.app.listen(port, '127.0.0.1');
    browser = await launchChromium();
  }, TIMEOUT_MS);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  }, TIMEOUT_MS);

  /** Opens the board signed out, signs in at the provider, and lands back on the board. */
  async function openBoardAs(login: DemoLogin) {
    const context = await browser!.newContext();
    const page = await context.newPage();
    const blocked: string[] = [];
    page.on('console', (msg) => {
      // The board links a web font from Google, which the page policy keeps out on purpose.
      if (
        /Content.Security.Policy|Refused to/i.test(msg.text()) &&
        !/fonts\.googleapis/.test(msg.text())
      ) {
        blocked.push(msg.text());
      }
    });
    await page.goto(`${baseUrl}/api/v1/admin/queues`);
    const user = demoUser(login);
    await page.locator('input[name=login]').fill(user.login);
    await page.locator('input[name=password]').fill(user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const back = page.waitForURL(`${baseUrl}/api/v1/admin/queues`);
    await page.getByRole('button', { name: 'Continue' }).click();
    const response = await back.then(() => page.reload());
    return { context, page, blocked, status: response?.status() };
  }

  it(
    'shows an admin, after signing in, every queue including a device registered after boot',
    async () => {
      const roles = await roleHeaders(app!);
      const device = await createDevice(app!.app.getHttpServer(), roles.admin, {
        runner: 'local',
      });
      const { context, page, blocked, status } = await openBoardAs('admin');
      try {
        expect(status).toBe(200);
        await page.getByText('labgate queues').first().waitFor({ timeout: 20_000 });
        for (const name of ['system', 'jobs', 'notifications', `device ${device.body.name}`]) {
          await page.getByText(name, { exact: true }).first().waitFor({ timeout: 20_000 });
        }
        expect(blocked).toEqual([]);
      } finally {
        await page.screenshot({ path: SCREENSHOT, fullPage: true }).catch(() => undefined);
        await context.close();
      }
    },
    TIMEOUT_MS,
  );

  it(
    'refuses a signed-in plain user',
    async () => {
      const { context, page, status } = await openBoardAs('user');
      try {
        expect(status).toBe(403);
        expect(await page.locator('body').innerText()).toContain(
          'The queue dashboard needs the admin role.',
        );
        expect(await page.getByText('labgate queues').count()).toBe(0);
      } finally {
        await context.close();
      }
    },
    TIMEOUT_MS,
  );
});
