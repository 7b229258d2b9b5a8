// lib.js — what every page of the console uses: building DOM nodes (text
// only ever goes in as textContent: nothing from the server is parsed as
// HTML), talking to the API, money and time formatting, the operator's role.

/** el('div', {class: 'x', onclick: f}, 'text', child, [more]) — attributes
 *  are set with setAttribute (never innerHTML), functions become listeners,
 *  strings and numbers become text nodes. */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === 'function') node.addEventListener(key.replace(/^on/, ''), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** One API call: JSON in and out, same origin only. Resolves to
 *  {status, body} for 2xx; rejects with ApiError (the server's "error"
 *  text) otherwise. Writes always go as application/json (the server
 *  refuses anything else). */
export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (method !== 'GET' && method !== 'HEAD') {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body === undefined ? {} : body);
  }
  let res;
  try {
    res = await fetch('/api/v1/' + path, init);
  } catch (e) {
    throw new ApiError(0, 'the switch cannot be reached (' + e.message + ')', null);
  }
  let data = null;
  const type = res.headers.get('Content-Type') || '';
  if (type.startsWith('application/json')) {
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
  }
  if (!res.ok) {
    const text = data && typeof data.error === 'string' ? data.error : res.status + ' ' + res.statusText;
    throw new ApiError(res.status, text, data);
  }
  return { status: res.status, body: data };
}

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

// ---- money: integer paisa throughout, never floating point ----

/** 123456 -> "1,234.56" (negative with a minus). Works on integers up to
 *  2^53 by string arithmetic. */
export function pkr(paisa) {
  if (paisa === null || paisa === undefined || !Number.isInteger(paisa)) return '—';
  const neg = paisa < 0;
  const digits = String(Math.abs(paisa)).padStart(3, '0');
  const rupees = digits.slice(0, -2).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (neg ? '−' : '') + rupees + '.' + digits.slice(-2);
}

/** "2,500.50" or "2500.5" -> 250050 paisa; null when it is not an amount. */
export function parsePkr(text) {
  const m = /^\s*(\d{1,13})(?:\.(\d{1,2}))?\s*$/.exec(String(text).replace(/,/g, ''));
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || '0').padEnd(2, '0'));
}

/** A compact count: 1234 -> "1,234". */
export function count(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return Math.round(n).toLocaleString('en-US');
}

export function ms(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  return (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0)) + ' ms';
}

/** An ISO 8601 time as "2026-12-02 14:03:07.123 UTC" (or "—"). */
export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().replace('T', ' ').replace(/Z$/, ' UTC');
}

// ---- the operator: who, and what the role may do ----

export const me = { known: false, name: '', role: '', may: [], certificate: null };

/** Loads GET /api/v1/me: the certificate's name and role and what the role
 *  may do. When it cannot be read the pages show reads only (the server
 *  decides anyway). */
export async function loadMe() {
  try {
    const { body } = await api('GET', 'me');
    Object.assign(me, { known: true }, body);
    if (!Array.isArray(me.may)) me.may = [];
  } catch (e) {
    me.known = false;
    me.role = 'unknown';
    me.may = [];
  }
  return me;
}

/** Whether the role may do action ("suspend", "ndc", "settle", ...). */
export function may(action) {
  return me.may.includes(action);
}

// ---- messages ----

let toastBox = null;

/** A short message at the top right; kind "ok" or "error". */
export function toast(text, kind) {
  if (!toastBox) {
    toastBox = el('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(toastBox);
  }
  const t = el('div', { class: 'toast ' + (kind || 'ok') }, text);
  toastBox.appendChild(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
}

/** The text an answer to a write deserves: applied, or proposed for a
 *  second operator's approval (202). */
export function outcome(res, done) {
  if (res.status === 202 && res.body && res.body.proposal) {
    const p = res.body.proposal;
    return 'Proposed #' + p.id + ' (' + p.action + ' ' + (p.target || '') + '): it takes effect once a second operator approves it.';
  }
  return done;
}

/** A button that runs an async action once at a time and reports errors. */
export function actionButton(label, action, attrs) {
  const b = el('button', Object.assign({ type: 'button' }, attrs || {}), label);
  b.addEventListener('click', async () => {
    if (b.disabled) return;
    b.disabled = true;
    try {
      await action();
    } catch (e) {
      toast(e.message, 'error');
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

/** A table: columns [{title, value: row => node|text, class}], rows. */
export function table(columns, rows, opts) {
  const o = opts || {};
  return el('table', { class: 'grid' + (o.class ? ' ' + o.class : ''), 'data-testid': o.testid },
    el('thead', {}, el('tr', {}, columns.map((c) => el('th', { class: c.class }, c.title)))),
    el('tbody', {}, rows.length === 0
      ? el('tr', {}, el('td', { class: 'empty', colspan: columns.length }, o.empty || 'Nothing yet.'))
      : rows.map((r) => el('tr', o.rowAttrs ? o.rowAttrs(r) : {}, columns.map((c) => el('td', { class: c.class }, c.value(r)))))));
}

/** A definition list from [label, value] pairs. */
export function facts(pairs) {
  return el('dl', { class: 'facts' }, pairs.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v === undefined || v === null || v === '' ? '—' : v)]));
}

export function badge(text, kind) {
  return el('span', { class: 'badge ' + (kind || '') }, text);
}

export function statusBadge(status) {
  const kind = { ACSC: 'good', RJCT: 'bad', active: 'good', suspended: 'bad', open: 'info', closed: 'warn', settled: 'good', pending: 'warn', approved: 'good', rejected: 'bad', expired: 'muted', withdrawn: 'muted' }[status];
  return badge(status || '—', kind);
}
