// watch.mjs — an operator watching the console, for loadtest/console.sh:
// headless chromium (playwright-core) with the viewer's certificate keeps
// the dashboard open for SECONDS and, in a second tab, searches the latest
// transfers and reloads the positions every 5 s, as a person on duty would.
//
// Usage: node watch.mjs SECONDS [--requests]
//
// --requests: no browser; the same requests the console makes, from Node
// (GET /api/v1/stats?since= and /api/v1/status every 500 ms as the
// dashboard does; every 5 s the latest 50 transfers and the positions as
// the second tab does), for what the console's requests cost the switch
// without the browser's own rendering on the same cores.
// Environment: SIKKA_CONSOLE_URL (https://HOST:PORT), SIKKA_VIEWER_CERT,
// SIKKA_VIEWER_KEY, SIKKA_CHROMIUM (default /usr/bin/chromium) and
// NODE_EXTRA_CA_CERTS (the dev CA: the switch's certificate is verified).
//
// Prints one JSON line: {"seconds", "updates" (dashboard redraws with a
// fresh answer), "updates_per_s", "max_gap_ms" (longest time between two
// redraws), "searches", "errors"}. Exit 0 when the dashboard drew at all
// and no request failed.

import { chromium } from 'playwright-core';
import { request } from 'node:https';
import { readFileSync } from 'node:fs';

const seconds = Number(process.argv[2]);
const url = process.env.SIKKA_CONSOLE_URL;
const cert = { certPath: process.env.SIKKA_VIEWER_CERT, keyPath: process.env.SIKKA_VIEWER_KEY };
if (!(seconds > 0) || !url || !cert.certPath || !cert.keyPath) {
  console.error('usage: SIKKA_CONSOLE_URL=... SIKKA_VIEWER_CERT=... SIKKA_VIEWER_KEY=... node watch.mjs SECONDS');
  process.exit(2);
}

/** GET path over mutual TLS; resolves to [status, body]. */
function get(agentOpts, path) {
  return new Promise((ok, fail) => {
    const req = request(url + path, { ...agentOpts, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => ok([res.statusCode, body]));
    });
    req.on('error', fail);
    req.end();
  });
}

/** The console's requests without a browser. */
async function requestsOnly() {
  const tls = { cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath),
    ca: process.env.NODE_EXTRA_CA_CERTS ? readFileSync(process.env.NODE_EXTRA_CA_CERTS) : undefined };
  const errors = [];
  let since = 0, updates = 0, searches = 0, maxGap = 0;
  const t0 = Date.now(), end = t0 + seconds * 1000;
  let last = t0, nextSearch = t0;
  while (Date.now() < end) {
    const started = Date.now();
    const [[s1, b1], [s2]] = await Promise.all([get(tls, '/api/v1/stats' + (since ? '?since=' + since : '')), get(tls, '/api/v1/status')]);
    if (s1 !== 200 || s2 !== 200) errors.push(`stats ${s1}, status ${s2}`);
    else {
      for (const p of JSON.parse(b1).series) since = Math.max(since, p.t);
      updates++;
      maxGap = Math.max(maxGap, Date.now() - last);
      last = Date.now();
    }
    if (Date.now() >= nextSearch) {
      const [[s3], [s4]] = await Promise.all([get(tls, '/api/v1/transfers?limit=50'), get(tls, '/api/v1/positions')]);
      if (s3 !== 200 || s4 !== 200) errors.push(`transfers ${s3}, positions ${s4}`);
      searches++;
      nextSearch += 5000;
    }
    await new Promise((ok) => setTimeout(ok, Math.max(0, 500 - (Date.now() - started))));
  }
  const span = (Date.now() - t0) / 1000;
  for (const e of errors) console.error('watch.mjs: ' + e);
  console.log(JSON.stringify({ seconds: Number(span.toFixed(3)), updates, updates_per_s: Number((updates / span).toFixed(3)),
    max_gap_ms: Math.max(maxGap, Date.now() - last), searches, errors: errors.length }));
  process.exit(updates > 0 && errors.length === 0 ? 0 : 1);
}
if (process.argv.includes('--requests')) await requestsOnly();

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
