// watch.mjs — an operator watching the console, for loadtest/console.sh:
// headless chromium (playwright-core) with the viewer's certificate keeps
// the dashboard open for SECONDS and, in a second tab, searches the latest
// transfers and reloads the positions every 5 s, as a person on duty would.
//
// Usage: node watch.mjs SECONDS
// Environment: SIKKA_CONSOLE_URL (https://HOST:PORT), SIKKA_VIEWER_CERT,
// SIKKA_VIEWER_KEY, SIKKA_CHROMIUM (default /usr/bin/chromium) and
// NODE_EXTRA_CA_CERTS (the dev CA: the switch's certificate is verified).
//
// Prints one JSON line: {"seconds", "updates" (dashboard redraws with a
// fresh answer), "updates_per_s", "max_gap_ms" (longest time between two
// redraws), "searches", "errors"}. Exit 0 when the dashboard drew at all
// and no request failed.

import { chromium } from 'playwright-core';

const seconds = Number(process.argv[2]);
const url = process.env.SIKKA_CONSOLE_URL;
const cert = { certPath: process.env.SIKKA_VIEWER_CERT, keyPath: process.env.SIKKA_VIEWER_KEY };
if (!(seconds > 0) || !url || !cert.certPath || !cert.keyPath) {
  console.error('usage: SIKKA_CONSOLE_URL=... SIKKA_VIEWER_CERT=... SIKKA_VIEWER_KEY=... node watch.mjs SECONDS');
  process.exit(2);
}

const args = ['--disable-dev-shm-usage', '--disable-gpu'];
if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
const browser = await chromium.launch({ executablePath: process.env.SIKKA_CHROMIUM || '/usr/bin/chromium', headless: true, args });
const errors = [];
let result = null;
try {
  const ctx = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    clientCertificates: [{ origin: url, certPath: cert.certPath, keyPath: cert.keyPath }],
  });
  const dash = await ctx.newPage();
  const other = await ctx.newPage();
  for (const p of [dash, other]) {
    p.on('pageerror', (e) => errors.push('page error: ' + e.message));
    p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  }
  await dash.goto(url + '/#/dashboard');
  await dash.waitForSelector('main[data-updates]', { timeout: 15000 });
  // every redraw's time, as the page sets data-updates
  await dash.evaluate(() => {
    const main = document.querySelector('main');
    window.__redraws = [];
    new MutationObserver(() => window.__redraws.push(performance.now()))
      .observe(main, { attributes: true, attributeFilter: ['data-updates'] });
  });
  const t0 = await dash.evaluate(() => performance.now());
  let searches = 0;
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    await other.goto(url + '/#/transfers?limit=50');
    await other.waitForSelector('[data-testid=transfers]', { timeout: 10000 });
    await other.goto(url + '/#/positions');
    await other.waitForSelector('[data-testid=positions]', { timeout: 10000 });
    searches++;
    await other.waitForTimeout(Math.max(0, Math.min(5000, end - Date.now())));
  }
  const t1 = await dash.evaluate(() => performance.now());
  const redraws = await dash.evaluate(() => window.__redraws);
  let maxGap = redraws.length ? redraws[0] - t0 : t1 - t0;
  for (let i = 1; i < redraws.length; i++) maxGap = Math.max(maxGap, redraws[i] - redraws[i - 1]);
  maxGap = Math.max(maxGap, redraws.length ? t1 - redraws[redraws.length - 1] : 0);
  const span = (t1 - t0) / 1000;
  result = { seconds: Number(span.toFixed(3)), updates: redraws.length, updates_per_s: Number((redraws.length / span).toFixed(3)),
    max_gap_ms: Math.round(maxGap), searches, errors: errors.length };
} catch (e) {
  errors.push(e.message);
} finally {
  await browser.close();
}
for (const e of errors) console.error('watch.mjs: ' + e);
console.log(JSON.stringify(result || { errors: errors.length }));
process.exit(result && result.updates > 0 && errors.length === 0 ? 0 : 1);
