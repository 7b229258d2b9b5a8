// console.mjs — the web console in a real browser: Debian's chromium, driven
// by playwright-core, presenting the operator's client certificate and
// trusting the switch only through the dev CA (NODE_EXTRA_CA_CERTS: Playwright
// makes the TLS connection to the server itself, in Node, and checks the
// server's certificate there; ignoreHTTPSErrors stays off).
//
// Run by tests/integration/it_browser.c, which starts PostgreSQL's test
// database, the switch and two payees (sikka-wallet listen), and sets:
//   SIKKA_CONSOLE_URL     https://127.0.0.1:PORT
//   SIKKA_OPERATOR_CERT   the operator's certificate and key (PEM)
//   SIKKA_OPERATOR_KEY
//   SIKKA_PKI             the participants' certificates (<CODE>.crt/.key, ca.crt)
//   SIKKA_CONNECT         the participant listener, HOST:PORT
//   SIKKA_WALLET_BIN      sikka-wallet
//   SIKKA_REPLAY_BIN      sikka-replay (the dashboard's traffic)
//   SIKKA_CHROMIUM        the browser (default /usr/bin/chromium)
//   SIKKA_SCREENSHOTS     where each page's screenshot goes
//   NODE_EXTRA_CA_CERTS   the dev CA (set before node starts)
//
// `node console.mjs` runs the whole walk through the pages and exits 0 when
// every check held. `node console.mjs --expect-untrusted` (started without
// NODE_EXTRA_CA_CERTS) checks the opposite: the console must not load when
// the switch's certificate is not trusted.

import { chromium } from 'playwright-core';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

function env(name, fallback) {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') {
    console.error(`console.mjs: ${name} is not set (run it through tests/run.sh: integration_browser)`);
    process.exit(2);
  }
  return v;
}

const url = env('SIKKA_CONSOLE_URL');
const shots = env('SIKKA_SCREENSHOTS');
const started = Date.now();
let step = '';
let failures = 0;

function say(text) {
  console.error(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);
}

function check(cond, what) {
  if (!cond) throw new Error(`${step}: ${what}`);
}

async function launch() {
  const args = ['--disable-dev-shm-usage', '--disable-gpu'];
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  return chromium.launch({ executablePath: env('SIKKA_CHROMIUM', '/usr/bin/chromium'), headless: true, args });
}

/** A browser context presenting one certificate (default: the operator's). */
async function context(browser, cert) {
  const c = cert || { certPath: env('SIKKA_OPERATOR_CERT'), keyPath: env('SIKKA_OPERATOR_KEY') };
  return browser.newContext({
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
    clientCertificates: [{ origin: url, certPath: c.certPath, keyPath: c.keyPath }],
  });
}

/** A role's certificate in the PKI (viewer, supervisor, supervisor2). */
function roleCert(name) {
  const certPath = join(env('SIKKA_PKI'), name + '.crt');
  const keyPath = join(env('SIKKA_PKI'), name + '.key');
  check(existsSync(certPath) && existsSync(keyPath), `the PKI has no ${name}.crt/.key (deploy/pki.sh makes them)`);
  return { certPath, keyPath };
}

/** sikka-wallet as participant `code`; resolves to its first stdout line. */
function wallet(code, args) {
  const pki = env('SIKKA_PKI');
  const argv = ['--connect', env('SIKKA_CONNECT'), '--participant', code, '--cert', join(pki, code + '.crt'),
    '--key', join(pki, code + '.key'), '--ca', join(pki, 'ca.crt'), '--timeout-ms', '10000', ...args];
  return new Promise((resolve) => {
    execFile(env('SIKKA_WALLET_BIN'), argv, { timeout: 20000 }, (err, stdout, stderr) => {
      const line = stdout.split('\n').filter(Boolean).pop() || '';
      if (err && !line) say(`sikka-wallet ${args.join(' ')}: ${stderr.trim()}`);
      resolve(line);
    });
  });
}

function pay(from, to, msgId, extra) {
  return wallet(from, ['pay', '--from', '03001234567', '--to', `LOAN-ACC-77@${to}`, '--amount', '1500.00',
    '--purpose', 'P2P', '--msg-id', msgId, ...(extra || [])]);
}

/** Starts sikka-replay: a capture of NAYA, SADA and MEZN paying one
 *  another, sent open loop at 25 transfers/s for up to a minute (the walk
 *  stops it sooner). Resolves once it runs. */
async function startReplay() {
  const bin = env('SIKKA_REPLAY_BIN');
  const capture = join(shots, 'traffic.cap');
  await new Promise((ok, fail) => execFile(bin, ['gen', '-o', capture, '--count', '1500', '--participants',
    'NAYA,SADA,MEZN', '--bank', 'MEZN', '--mix', 'supplier=50,p2p=50', '--supplier-amount', '100:2000',
    '--p2p-amount', '100:2000', '--retry-rate', '0', '--reject-rate', '0', '--malformed-rate', '0', '--seed',
    String(Date.now() % 100000)], (err, _o, stderr) => (err ? fail(new Error(`sikka-replay gen: ${stderr}`)) : ok())));
  const child = spawn(bin, ['run', capture, '--connect', env('SIKKA_CONNECT'), '--pki', env('SIKKA_PKI'), '--rate', '25',
    '--duration', '60', '--drain', '5', '--quiet', '--json', capture + '.json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const r = { child, out: '', done: null, json: capture + '.json' };
  child.stdout.on('data', (d) => { r.out += d; });
  child.stderr.on('data', (d) => { r.out += d; });
  r.done = new Promise((ok) => child.on('close', (code, signal) => ok({ code, signal })));
  say('sikka-replay run: 25 transfers/s (NAYA, SADA, MEZN)');
  return r;
}

/** Stops sikka-replay (SIGINT: it stops sending, drains and reports);
 *  returns how many ACSC it saw and its report. */
async function stopReplay(r) {
  r.child.kill('SIGINT');
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 15000);
  const end = await r.done;
  clearTimeout(timer);
  let acsc = 0;
  try {
    acsc = JSON.parse(readFileSync(r.json, 'utf8')).settled;
  } catch (e) {
    say(`sikka-replay wrote no report: ${e.message}`);
  }
  say(`sikka-replay stopped (${end.signal || 'exit ' + end.code}): ${acsc} ACSC`);
  return { acsc, text: r.out.slice(-600) };
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, name + '.png') });
  say(`screenshot ${name}.png`);
}

/** Shows a page of the console: the first time by loading it, then by
 *  its hash route, as a person clicking through it would (the app stays). */
/** While set, the HTTP status the page is about to be refused with on
 *  purpose (e.g. 403 for approving one's own proposal): the browser logs it
 *  as a console error, which is then no problem. */
let refusalExpected = 0;

/** The people at work: the operator's page, and when the PKI has roles a
 *  supervisor's (caps, settlement, new participants) and a second
 *  supervisor's, who approves what the others propose (four-eyes). */
const people = { operator: null, supervisor: null, approver: null };

/** Clicks selector on page and waits for the console's answer (a message):
 *  the change done (its text matches `applied`), or a proposal, which the
 *  approver then approves on the Proposals page. Returns the proposal's id
 *  or 0. */
async function act(page, selector, applied) {
  await page.evaluate(() => document.querySelectorAll('.toast').forEach((t) => t.remove()));
  await page.click(selector);
  const toast = await page.waitForSelector('.toast', { timeout: 10000 });
  const text = await toast.textContent();
  check(!(await toast.evaluate((t) => t.classList.contains('error'))), `${selector}: the switch refused: ${text}`);
  const proposed = /Proposed #(\d+)/.exec(text);
  if (!proposed) {
    check(applied.test(text), `${selector}: "${text}" does not say ${applied}`);
    return 0;
  }
  const id = proposed[1];
  say(`${selector}: proposal ${id}`);
  // four-eyes: the proposer cannot approve its own proposal
  refusalExpected = 403;
  const own = await page.evaluate(async (pid) => (await fetch('/api/v1/proposals/' + pid + '/approve', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })).status, id);
  await page.waitForTimeout(50); // the console message comes after the answer
  refusalExpected = 0;
  check(own === 403, `approving one's own proposal ${id}: HTTP ${own}, not 403`);
  const ap = people.approver;
  await go(ap, '#/proposals', '[data-testid=proposal-state]');
  await ap.evaluate(() => document.querySelectorAll('.toast').forEach((t) => t.remove()));
  await ap.click(`[data-testid=approve-${id}]`, { timeout: 10000 });
  const done = await (await ap.waitForSelector('.toast', { timeout: 10000 })).textContent();
  check(new RegExp(`Proposal ${id} approved`).test(done), `approving ${id}: ${done}`);
  return Number(id);
}

async function go(page, hash, ready) {
  if (page.url().startsWith(url + '/')) await page.evaluate((h) => { location.hash = h; }, hash);
  else await page.goto(url + '/' + hash);
  await page.waitForSelector(ready, { timeout: 10000 });
}

/** The untrusted case: no dev CA, so the switch's certificate fails. */
async function expectUntrusted() {
  step = 'untrusted server';
  check(!process.env.NODE_EXTRA_CA_CERTS, 'run without NODE_EXTRA_CA_CERTS');
  const browser = await launch();
  try {
    const page = await (await context(browser)).newPage();
    const res = await page.goto(url + '/');
    const text = await page.textContent('body');
    say(`without the dev CA: HTTP ${res ? res.status() : '-'}: ${text.trim().slice(0, 160)}`);
    check(res && res.status() === 503 && /client-certificate error/.test(text) && /certificate/i.test(text),
      'the console loaded although its certificate is not trusted');
    check(!/Sikka/.test(await page.title()), 'the console loaded');
  } finally {
    await browser.close();
  }
}

async function walk() {
  mkdirSync(shots, { recursive: true });
  const browser = await launch();
  const ctx = await context(browser);
  const page = await ctx.newPage();
  people.operator = page;
  const sup = roleCert('supervisor'), sup2 = roleCert('supervisor2'), viewer = roleCert('viewer');
  people.supervisor = await (await context(browser, sup)).newPage();
  people.approver = await (await context(browser, sup2)).newPage();
  for (const p of [people.supervisor, people.approver]) p.on('dialog', (d) => d.accept());
  say('roles: operator, supervisor, supervisor2 and viewer certificates');
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  // what the CSP check and the refusals below log on purpose; anything
  // else is a problem
  let cspCheck = false;
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (cspCheck && /Content Security Policy/.test(m.text())) return;
    if (refusalExpected && m.text().includes(`status of ${refusalExpected}`)) return;
    problems.push('console error: ' + m.text() + ' (' + (m.location().url || '-') + ')');
  });
  page.on('dialog', (d) => d.accept());
  let replay = null;
  try {
    step = 'dashboard';
    await go(page, '#/dashboard', '[data-testid=settled-total]');
    await page.waitForFunction(() => /^\d[\d,]*$/.test(document.querySelector('[data-testid=settled-total]').textContent), null, { timeout: 10000 });
    const settled = async () => Number((await page.textContent('[data-testid=settled-total]')).replace(/,/g, ''));
    const before = await settled();
    say(`dashboard: ${before} settled so far; sending traffic`);

    step = 'traffic';
    const loan = await pay('JAZZ', 'KOKO', 'BROWSER-LOAN-1', ['--purpose', 'BNPL_REPAYMENT', '--ref', 'KOKO-LN-77/2']);
    check(/^ACSC \d+$/.test(loan), `the BNPL repayment settles: "${loan}"`);
    const loanId = loan.split(' ')[1];
    const invoice = await wallet('JAZZ', ['pay', '--from', '03001234567', '--to', 'SUPPLIER-9@MEZN', '--amount', '25000.00',
      '--purpose', 'SUPPLIER_PAYMENT', '--ref', 'INV-BROWSER-7', '--msg-id', 'BROWSER-INV-1']);
    check(/^ACSC \d+$/.test(invoice), `the supplier payment settles: "${invoice}"`);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => pay(i % 2 ? 'EASY' : 'SADA', 'KOKO', `BROWSER-P2P-${i}`)));
    check(results.every((r) => /^ACSC /.test(r)), `every payment settles: ${results.join('; ')}`);
    // and steady traffic from sikka-replay (NAYA and SADA paying MEZN and
    // each other) while the pages are visited: the dashboard counts it
    replay = await startReplay();
    step = 'dashboard counts the traffic';
    await page.waitForFunction((want) => Number(document.querySelector('[data-testid=settled-total]').textContent.replace(/,/g, '')) >= want,
      before + 12, { timeout: 10000 });
    say(`dashboard: ${await settled()} settled`);

    step = 'the strict CSP holds in the browser';
    cspCheck = true;
    const inline = await page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'window.__inline = 1; console.log("inline-check ran")';
      document.body.appendChild(s);
      return window.__inline === undefined;
    });
    check(inline, 'an inline script ran despite the CSP');
    await page.waitForTimeout(100);
    cspCheck = false;

    step = 'find a transfer by msg_id';
    await go(page, '#/transfers', '[data-testid=search-form]');
    await page.fill('[data-testid=search-msg_id]', 'BROWSER-LOAN-1');
    await page.click('[data-testid=search-submit]');
    await page.waitForSelector('[data-testid=transfers] [data-testid=transfer-link]', { timeout: 10000 });
    let ids = await page.$$eval('[data-testid=transfers] [data-testid=transfer-link]', (as) => as.map((a) => a.textContent));
    check(ids.length === 1 && ids[0] === loanId, `one hit, transfer ${loanId}: ${ids}`);
    check(page.url().includes('msg_id=BROWSER-LOAN-1'), 'the search is in the address');
    await page.click('[data-testid=transfer-link]');
    await page.waitForSelector('[data-testid=timeline] li', { timeout: 10000 });
    check((await page.textContent('[data-testid=detail-msg-id]')) === 'BROWSER-LOAN-1', 'the detail shows the msg_id');
    const events = await page.$$eval('[data-testid=timeline] .ev-name', (n) => n.map((x) => x.textContent));
    check(events[0] === 'received' && events.includes('posted') && events.includes('reported'), `timeline: ${events}`);
    await shot(page, 'transfer');

    step = 'find it by its loan reference';
    await go(page, '#/transfers', '[data-testid=search-form]');
    await page.fill('[data-testid=search-ref]', 'KOKO-LN-77');
    await page.click('[data-testid=search-submit]');
    await page.waitForSelector('[data-testid=transfers] [data-testid=transfer-link]', { timeout: 10000 });
    ids = await page.$$eval('[data-testid=transfers] [data-testid=transfer-link]', (as) => as.map((a) => a.textContent));
    check(ids.length === 1 && ids[0] === loanId, `one hit by ref, transfer ${loanId}: ${ids}`);

    step = 'the latest transfers, paged';
    await go(page, '#/transfers?limit=25&participant=KOKO', '[data-testid=transfers] [data-testid=transfer-link]');
    ids = await page.$$eval('[data-testid=transfers] [data-testid=transfer-link]', (as) => as.map((a) => a.textContent));
    check(ids.length === 11, `KOKO: 11 transfers, got ${ids.length}`);
    await shot(page, 'transfers');

    step = 'suspend EASY: its next payment is refused with AG10';
    await go(page, '#/participants/EASY', '[data-testid=suspend]');
    await act(page, '[data-testid=suspend]', /EASY suspended/);
    await page.waitForFunction(() => document.querySelector('[data-testid=participant-status]').textContent === 'suspended', null, { timeout: 10000 });
    const refused = await pay('EASY', 'KOKO', 'BROWSER-SUSPENDED-1');
    check(/^RJCT AG10\b/.test(refused), `a suspended payer gets AG10: "${refused}"`);
    await shot(page, 'participant');
    await act(page, '[data-testid=resume]', /EASY resumed/);
    await page.waitForFunction(() => document.querySelector('[data-testid=participant-status]').textContent === 'active', null, { timeout: 10000 });

    step = 'a participant named with HTML is shown as text';
    const evil = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">&amp;';
    const sp = people.supervisor;
    await go(sp, '#/participants', '[data-testid=add-submit]');
    await sp.fill('[data-testid=add-code]', 'XSSX');
    await sp.fill('[data-testid=add-name]', evil);
    await sp.fill('[data-testid=add-ndc]', '1000.00');
    await act(sp, '[data-testid=add-submit]', /Participant XSSX added/);
    await go(page, '#/participants', '[data-testid=participants]');
    await page.waitForSelector('[data-code=XSSX] .pname', { timeout: 10000 });
    check((await page.textContent('[data-code=XSSX] .pname')) === evil, 'the name is shown as it was typed');
    check((await page.$$('[data-code=XSSX] .pname *')).length === 0, 'the name made no element');
    await go(page, '#/participants/XSSX', '[data-testid=participant-name]');
    check((await page.textContent('[data-testid=participant-name]')) === evil, 'the detail shows the name as text');
    check(await page.evaluate(() => window.__xss === undefined && document.querySelectorAll('img[src=x]').length === 0), 'no script ran');
    await go(page, '#/participants', '[data-code=XSSX]');
    await shot(page, 'participants');

    step = 'positions: change a cap';
    await go(sp, '#/positions', '[data-testid=cap-input-KOKO]');
    await sp.fill('[data-testid=cap-input-KOKO]', '300000.00');
    await act(sp, '[data-testid=cap-set-KOKO]', /KOKO: cap set to PKR 300,000\.00/);
    await go(page, '#/positions', '[data-testid=positions]');
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=positions] tr')].some((r) => /KOKO/.test(r.textContent) && /300,000\.00/.test(r.textContent)), null, { timeout: 10000 });
    await shot(page, 'positions');

    step = 'close the window, download its report, settle it';
    await go(page, '#/windows', '[data-testid=window-close]');
    await page.waitForSelector('[data-testid=windows] tbody tr', { timeout: 10000 });
    await act(page, '[data-testid=window-close]', /Window \d+ closed/);
    const link = await page.waitForSelector('[data-testid=windows] a[data-testid^=report-]', { timeout: 10000 });
    const windowId = (await link.getAttribute('data-testid')).replace('report-', '');
    await shot(page, 'windows');
    await link.click();
    await page.waitForSelector('[data-testid=report-csv]', { timeout: 10000 });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=report-csv]')]);
    const csv = readFileSync(await download.path(), 'utf8');
    say(`report of window ${windowId}: ${download.suggestedFilename()}, ${csv.split('\n').length - 1} lines`);
    check(csv.startsWith('participant,account_id,net,net_pkr,postings\n'), `CSV header: ${csv.slice(0, 60)}`);
    check(/^JAZZ,\d+,-\d+,-[\d.]+,\d+$/m.test(csv) && /^total,,0,0\.00,\d+$/m.test(csv), `CSV rows: ${csv}`);
    await shot(page, 'report');
    await go(sp, '#/windows/' + windowId, '[data-testid=window-settle]');
    if (await act(sp, '[data-testid=window-settle]', new RegExp(`Window ${windowId} settled`)))
      await sp.reload(); // approved on another page: show it again
    await sp.waitForFunction(() => document.querySelector('[data-testid=window-state]') && document.querySelector('[data-testid=window-state]').textContent === 'settled', null, { timeout: 10000 });

    step = 'the audit trail';
    await go(page, '#/audit', '[data-testid=audit] tbody tr');
    const audit = await page.textContent('[data-testid=audit]');
    for (const action of ['participant.suspend', 'participant.resume', 'participant.add', 'ndc.set', 'window.close', 'window.settle'])
      check(audit.includes(action), `the audit shows ${action}`);
    await shot(page, 'audit');

    {
      step = 'a viewer sees no control it may not use';
      const vp = await (await context(browser, viewer)).newPage();
      await go(vp, '#/participants/JAZZ', '[data-testid=participant-status]');
      await go(vp, '#/windows', '[data-testid=windows] tbody tr');
      check((await vp.$$('[data-testid=window-close]')).length === 0, 'a viewer is offered to close the window');
      await go(vp, '#/positions', '[data-testid=positions] tbody tr');
      check((await vp.$$('[data-testid^=cap-set-]')).length === 0, 'a viewer is offered to change a cap');
      await go(vp, '#/participants/JAZZ', '[data-testid=participant-status]');
      check((await vp.$$('[data-testid=suspend]')).length === 0, 'a viewer is offered to suspend');
      // and the API refuses what the pages do not offer
      const writes = [['POST', '/api/v1/participants/JAZZ/suspend'], ['POST', '/api/v1/windows/close'],
        ['PUT', '/api/v1/participants/JAZZ/ndc', '{"ndc":1}'], ['POST', `/api/v1/windows/${windowId}/settle`],
        ['POST', '/api/v1/participants', '{"code":"VWVW","name":"Viewer","kind":"wallet","ndc":0}'],
        ['POST', '/api/v1/participants/JAZZ/resume'], ['POST', '/api/v1/proposals/1/approve'],
        ['POST', '/api/v1/proposals/1/reject'], ['POST', '/api/v1/proposals/1/withdraw']];
      const statuses = await vp.evaluate(async (ws) => Promise.all(ws.map(async ([method, path, body]) =>
        (await fetch(path, { method, headers: { 'Content-Type': 'application/json' }, body: body || '{}' })).status)), writes);
      writes.forEach(([m, p], i) => check(statuses[i] === 403, `a viewer's ${m} ${p}: HTTP ${statuses[i]}, not 403`));
      say(`viewer: ${writes.length} writes refused with 403`);
      await vp.close();
    }

    step = 'proposals: its proposer withdraws one, and is offered nothing else';
    const proposed = await sp.evaluate(async () => {
      const res = await fetch('/api/v1/participants/MEZN/ndc', { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: '{"ndc":123400}' });
      return { status: res.status, body: await res.json() };
    });
    check(proposed.status === 202 && proposed.body.proposal, `proposing a cap: HTTP ${proposed.status}`);
    const pid = proposed.body.proposal.id;
    await go(page, '#/proposals', `[data-testid=approve-${pid}]`);
    await page.waitForTimeout(500);
    await shot(page, 'proposals');
    await go(sp, '#/proposals', `[data-testid=withdraw-${pid}]`);
    check(await sp.$(`[data-testid=approve-${pid}]`) === null && await sp.$(`[data-testid=reject-${pid}]`) === null,
      `the proposer of ${pid} is offered to approve or reject it`);
    await sp.evaluate(() => document.querySelectorAll('.toast').forEach((t) => t.remove()));
    await sp.click(`[data-testid=withdraw-${pid}]`);
    const withdrawn = await (await sp.waitForSelector('.toast', { timeout: 10000 })).textContent();
    check(new RegExp(`Proposal ${pid} withdrawn`).test(withdrawn), `withdrawing ${pid}: ${withdrawn}`);

    step = 'the dashboard after a few seconds of traffic';
    await go(page, '#/dashboard', '[data-testid=settled-total]');
    await page.waitForTimeout(8000);
    const counted = Number((await page.textContent('[data-testid=settled-total]')).replace(/,/g, ''));
    await shot(page, 'dashboard'); // with the traffic flowing
    const sent = await stopReplay(replay);
    replay = null;
    check(sent.acsc > 0, `sikka-replay settled nothing: ${sent.text}`);
    check(counted > before + 12 + 50, `the replayed payments were counted: ${counted} settled, ${before} before`);

    step = 'no error in the page';
    check(problems.length === 0, problems.join('\n'));
  } catch (e) {
    failures++;
    say(`FAILED: ${e.message}`);
    await page.screenshot({ path: join(shots, 'failure.png') }).catch(() => {});
    if (problems.length) say(problems.join('\n'));
  } finally {
    if (replay) await stopReplay(replay);
    await browser.close();
  }
}

try {
  if (process.argv.includes('--expect-untrusted')) await expectUntrusted();
  else await walk();
} catch (e) {
  failures++;
  say(`FAILED: ${e.message}`);
}
say(failures ? 'console.mjs: FAILED' : 'console.mjs: every check held');
process.exit(failures ? 1 : 0);
