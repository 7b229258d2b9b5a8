// dashboard.js — the live page: throughput, rejections, latency, the
// database's commits, sessions and the open window, polled every second.
//
// It reads GET /api/v1/stats?since= (one point per second, last 15 min)
// and GET /api/v1/status (the totals) twice a second, so that the page is
// never more than a second behind (a poll that took 300 ms is followed by
// the next 200 ms later). Each poll that drew the page counts in
// main.dataset.updates (loadtest/console.sh measures how often the
// dashboard really updates).

import { api, el, fill, count, ms, pkr, table } from './lib.js';
import { LineChart } from './chart.js';

const SPAN = 900; // seconds shown
const POLL_MS = 500;
const REASONS = {
  AB05: 'payee did not answer in time', AB08: 'payee not connected', AC01: 'unknown account',
  AC04: 'closed account', AC06: 'blocked account', AG10: 'payer suspended', AG11: 'payee suspended',
  AM02: 'amount not allowed', AM03: 'currency not allowed', AM05: 'duplicate', AM06: 'amount too low for the fee',
  AM23: 'net debit cap exceeded', FF01: 'malformed', FF03: 'bad purpose', MS03: 'refused by the ledger',
  RC01: 'wrong debtor agent', RC04: 'unknown creditor agent', NARR: 'see text',
};

function tile(title, testid) {
  const value = el('div', { class: 'tile-value', 'data-testid': testid }, '—');
  const sub = el('div', { class: 'tile-sub' }, '');
  return { node: el('div', { class: 'tile' }, el('div', { class: 'tile-title' }, title), value, sub), value, sub };
}

function chartBox(title) {
  const canvas = el('canvas', { role: 'img', 'aria-label': title });
  return { node: el('section', { class: 'panel chart' }, el('h3', {}, title), el('div', { class: 'canvas-wrap' }, canvas)), canvas };
}

// kept across visits of the page, so that coming back shows the history
const points = new Map(); // t -> {settled, rejected, p50_ms, ...}
let since = 0;

export function dashboard(main) {
  const tiles = {
    settled: tile('Settled / s', 'settled-rate'),
    rejected: tile('Rejected / s', 'rejected-rate'),
    p50: tile('Latency p50', 'latency-p50'),
    p99: tile('Latency p99', 'latency-p99'),
    commit: tile('DB commit p50 / p99', 'commit-latency'),
    batch: tile('Batch size (avg)', 'batch-avg'),
    total: tile('Settled since start', 'settled-total'),
    window: tile('Open window gross', 'window-gross'),
  };
  const mode = el('span', { class: 'muted', 'data-testid': 'stats-source' }, '');
  const charts = {
    rate: chartBox('Transfers per second'),
    latency: chartBox('End-to-end latency (ms)'),
    commit: chartBox('Database commit (ms)'),
    batch: chartBox('Transfers per batch'),
  };
  const lines = {
    rate: new LineChart(charts.rate.canvas, { span: SPAN }),
    latency: new LineChart(charts.latency.canvas, { span: SPAN, unit: 'ms' }),
    commit: new LineChart(charts.commit.canvas, { span: SPAN, unit: 'ms' }),
    batch: new LineChart(charts.batch.canvas, { span: SPAN }),
  };
  const reasons = el('div', { 'data-testid': 'rejections' });
  const sessions = el('div', { 'data-testid': 'sessions' });
  fill(main,
    el('div', { class: 'page-head' }, el('h2', {}, 'Dashboard'), mode),
    el('div', { class: 'tiles' }, Object.values(tiles).map((t) => t.node)),
    el('div', { class: 'charts' }, Object.values(charts).map((c) => c.node)),
    el('div', { class: 'two' },
      el('section', { class: 'panel' }, el('h3', {}, 'Rejections by reason (since start)'), reasons),
      el('section', { class: 'panel' }, el('h3', {}, 'Sessions per participant'), sessions)));

  let updates = 0;
  let fresh = 0; // seconds the last poll brought
  let drawn = false;
  let stopped = false;
  let timer = null;

  function keep(now) {
    for (const t of points.keys()) if (t <= now - SPAN) points.delete(t);
  }

  function series(key) {
    return [...points.entries()].sort((a, b) => a[0] - b[0]).map(([t, p]) => [t, p[key]]);
  }

  function lastOf(key) {
    const all = series(key).filter(([, v]) => Number.isFinite(v));
    return all.length ? all[all.length - 1][1] : null;
  }

  function showSessions(map) {
    const rows = Object.entries(map || {}).sort((a, b) => a[0].localeCompare(b[0]));
    fill(sessions, table([
      { title: 'Participant', value: (r) => el('a', { href: '#/participants/' + encodeURIComponent(r[0]) }, r[0]) },
      { title: 'Sessions', class: 'num', value: (r) => count(r[1]) },
    ], rows, { empty: 'No participant is connected.' }));
  }

  function showReasons(map) {
    const rows = Object.entries(map || {}).sort((a, b) => b[1] - a[1]);
    const total = rows.reduce((s, r) => s + r[1], 0) || 1;
    fill(reasons, table([
      { title: 'Code', value: (r) => el('code', {}, r[0]) },
      { title: 'Meaning', value: (r) => REASONS[r[0]] || '' },
      { title: 'Count', class: 'num', value: (r) => count(r[1]) },
      { title: '', class: 'barcell', value: (r) => { const b = el('div', { class: 'minibar' }); b.style.width = Math.max(1, (100 * r[1]) / total) + '%'; return b; } },
    ], rows, { empty: 'No rejection.' }));
  }

  async function fromStats() {
    const { body } = await api('GET', 'stats' + (since ? '?since=' + since : ''));
    fresh = (body.series || []).length;
    for (const p of body.series || []) {
      points.set(p.t, p);
      since = Math.max(since, p.t);
    }
    keep(body.now);
    showReasons(body.rejections);
    showSessions(body.sessions);
    tiles.window.value.textContent = 'PKR ' + pkr(body.window_gross);
    tiles.window.sub.textContent = 'window ' + body.window + ' · ' + count(body.window_postings) + ' postings';
    return body.now;
  }

  async function poll() {
    let now;
    try {
      const status = (await api('GET', 'status')).body;
      tiles.total.value.textContent = count(status.counters.settled);
      tiles.total.sub.textContent = count(status.counters.rejected) + ' rejected · ' + count(status.sessions) + ' sessions';
      now = await fromStats();
      mode.textContent = 'live from /api/v1/stats, twice a second';
      const last = (k) => lastOf(k);
      tiles.settled.value.textContent = count(last('settled'));
      tiles.rejected.value.textContent = count(last('rejected'));
      tiles.p50.value.textContent = ms(last('p50_ms'));
      tiles.p99.value.textContent = ms(last('p99_ms'));
      tiles.commit.value.textContent = ms(last('commit_p50_ms')) + ' / ' + ms(last('commit_p99_ms'));
      tiles.batch.value.textContent = Number.isFinite(last('batch_avg')) ? last('batch_avg').toFixed(1) : '—';
      // the charts only when a second was added (the tiles every poll)
      if (fresh > 0 || !drawn) {
        drawn = true;
        lines.rate.draw([{ label: 'settled', color: '#1a7f5a', points: series('settled') }, { label: 'rejected', color: '#c0392b', points: series('rejected') }], now);
        lines.latency.draw([{ label: 'p50', color: '#2563eb', points: series('p50_ms') }, { label: 'p99', color: '#7c3aed', points: series('p99_ms') }], now);
        lines.commit.draw([{ label: 'p50', color: '#0e7490', points: series('commit_p50_ms') }, { label: 'p99', color: '#b45309', points: series('commit_p99_ms') }], now);
        lines.batch.draw([{ label: 'average', color: '#475569', points: series('batch_avg') }], now);
      }
      main.dataset.updated = String(Date.now());
      main.dataset.updates = String(++updates);
    } catch (e) {
      mode.textContent = 'cannot update: ' + e.message;
    }
  }

  async function loop() {
    if (stopped) return;
    const started = Date.now();
    await poll();
    if (!stopped) timer = setTimeout(loop, Math.max(0, POLL_MS - (Date.now() - started)));
  }
  loop();
  return () => { stopped = true; clearTimeout(timer); };
}
