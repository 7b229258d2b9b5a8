// app.js — the console's frame: the navigation, who is signed in (the
// client certificate's operator and role), and the hash router that shows
// one page at a time (#/dashboard, #/positions, #/participants[/CODE],
// #/windows[/ID], #/transfers[?search | /ID], #/audit, #/proposals).

import { el, fill, loadMe, me, may } from './lib.js';
import { dashboard } from './dashboard.js';
import { positions, participants, participant, windows, windowReport, transfers, transfer, audit, proposals } from './pages.js';

const NAV = [
  ['dashboard', 'Dashboard'],
  ['positions', 'Positions'],
  ['participants', 'Participants'],
  ['windows', 'Windows'],
  ['transfers', 'Transfers'],
  ['audit', 'Audit'],
  ['proposals', 'Proposals'],
];

const ROUTES = {
  dashboard: { list: dashboard },
  positions: { list: positions },
  participants: { list: participants, item: participant },
  windows: { list: windows, item: windowReport },
  transfers: { list: transfers, item: transfer },
  audit: { list: audit },
  proposals: { list: proposals },
};

let stop = null;
const main = el('main', { id: 'main', tabindex: '-1' });
const links = {};

function frame() {
  const who = el('div', { class: 'who', 'data-testid': 'who' },
    el('div', { class: 'who-name' }, me.name || 'unknown operator'),
    el('div', { class: 'who-role' }, me.known ? 'role: ' + me.role : 'role unknown: read only'),
    me.certificate && me.certificate.serial ? el('div', { class: 'who-cert' }, 'certificate ' + String(me.certificate.serial)) : null);
  const nav = el('nav', { 'aria-label': 'Pages' }, NAV.map(([key, label]) => {
    links[key] = el('a', { href: '#/' + key, 'data-testid': 'nav-' + key }, label);
    return links[key];
  }));
  fill(document.body,
    el('div', { class: 'layout' },
      el('aside', { class: 'side' },
        el('div', { class: 'brand' }, el('img', { src: '/icon.svg', alt: '', width: 28, height: 28 }), el('div', {}, el('div', { class: 'brand-name' }, 'Sikka'), el('div', { class: 'brand-sub' }, 'operations console'))),
        nav, who),
      main));
}

/** "#/transfers/42?x=1" -> {page: "transfers", id: "42", query} */
function parse(hash) {
  const raw = hash.replace(/^#\/?/, '');
  const qi = raw.indexOf('?');
  const path = qi >= 0 ? raw.slice(0, qi) : raw;
  const query = new URLSearchParams(qi >= 0 ? raw.slice(qi + 1) : '');
  const [page, id] = path.split('/').map((s) => decodeURIComponent(s || ''));
  return { page: page || 'dashboard', id: id || '', query };
}

function route() {
  if (stop) stop();
  stop = null;
  const r = parse(location.hash);
  const entry = ROUTES[r.page];
  for (const [key, a] of Object.entries(links)) a.classList.toggle('active', key === r.page);
  if (!entry) {
    fill(main, el('div', { class: 'panel' }, el('h2', {}, 'No such page'), el('p', {}, el('a', { href: '#/dashboard' }, 'Go to the dashboard'))));
    return;
  }
  const view = r.id && entry.item ? entry.item : entry.list;
  document.title = 'Sikka · ' + (NAV.find(([k]) => k === r.page) || ['', r.page])[1];
  main.dataset.page = r.page + (r.id ? '/' + r.id : '');
  stop = view(main, { id: r.id, query: r.query }) || null;
}

async function start() {
  await loadMe();
  document.body.dataset.role = me.known ? me.role : 'unknown';
  document.body.dataset.mayWrite = String(may('suspend') || may('window_close'));
  frame();
  window.addEventListener('hashchange', route);
  route();
}

start();
