/**
 * Driving the operations console in a browser page (test/e2e/console*.test.ts): the token login
 * and moving between views, each waited on by a condition of the page, never a sleep. What a file
 * counts as a problem on its pages (console errors, refused calls it expects) stays in the file.
 */
import type { Page } from 'playwright-core';

// What the page-side callbacks touch in the browser (the project's type-check has no DOM library).
declare const document: { getElementById(id: string): { textContent: string | null } | null };
declare const location: { hash: string };

/** Generous for a loaded 2-core CI machine; a page that works answers in well under a second. */
export const PAGE_WAIT = 20_000;

/**
 * Opens the console on `adminUrl` and signs in with a bearer token, then waits until the top bar
 * names `expectName` (the principal the token belongs to).
 */
export async function signInWithToken(
  page: Page,
  adminUrl: string,
  token: string,
  expectName: string,
): Promise<Page> {
  await page.goto(`${adminUrl}/console/`);
  await page.locator('#token').waitFor({ state: 'visible', timeout: PAGE_WAIT });
  await page.fill('#token', token);
  await page.press('#token', 'Enter');
  await page.waitForFunction(
    (name) => document.getElementById('who')?.textContent?.includes(name),
    expectName,
    { timeout: PAGE_WAIT },
  );
  return page;
}

/** Follows the navigation link of a view and waits for its address. */
export async function goToView(page: Page, view: string): Promise<void> {
  await page.click(`nav a[href="#${view}"]`);
  await page.waitForFunction((v) => location.hash === `#${v}`, view);
}
