// Drives the operators' web console in Debian's headless Chromium through playwright-core
// (no browser download): logs in, opens the exception queue, opens one exception, resolves
// it with an actor and a reason and checks that the page shows the new state, then visits
// the order, the SKU and the status pages. One full-page PNG per page into the screenshot
// directory. Run by crates/e2e/tests/console.rs:
//
//   node scripts/browser/console.mjs <base url> <operator token> <screenshot dir> <exception id>
//
// Prints one JSON line with what it saw; exits non-zero (with the reason on stderr) on the
// first check that fails or when the whole run takes longer than RUN_TIMEOUT_MS.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

/** The longest the whole run may take. */
const RUN_TIMEOUT_MS = 90_000;
/** The longest one step (a navigation, a click, a wait for an element) may take. */
const STEP_TIMEOUT_MS = 15_000;
/** The browser: Debian's package, never one playwright downloads. */
const CHROMIUM = process.env.STOCKLEDGER_CHROMIUM || '/usr/bin/chromium';

const [base, token, shots, exceptionId] = process.argv.slice(2);
if (!base || !token || !shots || !exceptionId) {
  console.error('usage: console.mjs <base url> <operator token> <screenshot dir> <exception id>');
  process.exit(2);
}

const timer = setTimeout(() => {
  console.error(`console.mjs: gave up after ${RUN_TIMEOUT_MS} ms`);
  process.exit(3);
}, RUN_TIMEOUT_MS);

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

const profile = mkdtempSync(join(tmpdir(), 'stockledger-chromium-'));
let context;
const seen = {};
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    timeout: STEP_TIMEOUT_MS,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const shot = async (name) => {
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  };

  // Not logged in: the queue sends the browser to the login form.
  await page.goto(`${base}/console/`);
  check(new URL(page.url()).pathname === '/console/login', `redirected to the login form, at ${page.url()}`);
  await shot('login');
  await page.fill('input[name=token]', 'not-the-token');
  await page.click('button[type=submit]');
  const refused = await page.textContent('.notice');
  check(refused.includes('not valid'), `a wrong token is refused: ${refused}`);
  await page.fill('input[name=token]', token);
  await Promise.all([page.waitForURL(`${base}/console/`), page.click('button[type=submit]')]);

  // The queue lists the exception.
  await page.waitForSelector('#queue');
  const link = page.locator(`#queue a[href="/console/exceptions/${exceptionId}"]`);
  check((await link.count()) === 1, `the queue lists exception ${exceptionId}`);
  seen.queue_rows = await page.locator('#queue tbody tr').count();
  await shot('queue');

  // The exception, open; resolved through the form.
  await Promise.all([page.waitForURL(`**/console/exceptions/${exceptionId}`), link.click()]);
  seen.state_before = (await page.textContent('#state')).trim();
  check(seen.state_before === 'open', `the exception is open, not ${seen.state_before}`);
  check((await page.textContent('#evidence')).length > 2, 'the evidence is shown');
  await page.fill('input[name=actor]', 'console:e2e');
  await page.fill('input[name=reason]', 'checked in the browser test');
  await page.fill('textarea[name=evidence]', 'ticket OPS-13 <b>not markup</b>');
  await shot('exception-open');
  await Promise.all([
    page.waitForURL(`**/console/exceptions/${exceptionId}`),
    page.click('button[value=resolve]'),
  ]);
  seen.notice = (await page.textContent('.notice')).trim();
  check(seen.notice.includes('resolve: resolved'), `the notice says resolved: ${seen.notice}`);
  seen.state_after = (await page.textContent('#state')).trim();
  check(seen.state_after === 'resolved', `the exception is resolved, not ${seen.state_after}`);
  const trail = await page.textContent('#trail');
  check(trail.includes('console:e2e') && trail.includes('checked in the browser test'), 'the audit trail has the action');
  await shot('exception');

  // Its order, one of the order's SKUs, the status.
  await Promise.all([page.waitForURL('**/console/orders/**'), page.click('#summary a[href^="/console/orders/"]')]);
  seen.order_state = (await page.textContent('#order-state')).trim();
  check((await page.locator('#events tbody tr').count()) >= 1, 'the order shows its events');
  await shot('order');
  await Promise.all([page.waitForURL('**/console/stock/**'), page.locator('a[href^="/console/stock/"]').first().click()]);
  check((await page.locator('#balances tbody tr').count()) >= 1, 'the SKU shows its balances');
  await shot('stock');
  await Promise.all([page.waitForURL('**/console/status'), page.click('nav a[href="/console/status"]')]);
  seen.readiness = (await page.textContent('#readiness')).trim();
  check(seen.readiness === 'ready', `the status page says ready, not ${seen.readiness}`);
  check((await page.locator('#lag').count()) === 1, 'the status page shows the lag');
  await shot('status');

  // Logging out ends the session in this browser.
  await Promise.all([page.waitForURL('**/console/login'), page.click('nav button:has-text("Log out")')]);
  await page.goto(`${base}/console/`);
  check(new URL(page.url()).pathname === '/console/login', 'logged out');
  console.log(JSON.stringify(seen));
} catch (e) {
  console.error(`console.mjs: ${e?.stack ?? e}`);
  process.exitCode = 1;
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  clearTimeout(timer);
}
