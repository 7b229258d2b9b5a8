// pages.js — every page but the dashboard: positions, participants,
// settlement windows, transfers, the audit trail and four-eyes proposals.
// Each page is a function (main, params) that fills main and returns a
// function stopping whatever it polls.

import { api, el, fill, pkr, parsePkr, count, when, query, may, me, toast, outcome, actionButton, table, facts, badge, statusBadge } from './lib.js';

function head(title, ...extra) {
  return el('div', { class: 'page-head' }, el('h2', {}, title), ...extra);
}

function failure(main, e) {
  fill(main, el('div', { class: 'panel error-panel' }, el('h3', {}, 'Cannot load this page'), el('p', {}, e.message)));
}

/** Polls render() every period ms until stopped. */
function every(period, render) {
  let stopped = false, timer = null;
  const loop = async () => {
    if (stopped) return;
    await render();
    if (!stopped) timer = setTimeout(loop, period);
  };
  loop();
  return () => { stopped = true; clearTimeout(timer); };
}

/** An inline "set the cap" form for participant code. */
function capForm(code, current, after) {
  const input = el('input', { type: 'text', inputmode: 'decimal', placeholder: 'PKR', size: 12, 'aria-label': 'New cap for ' + code, 'data-testid': 'cap-input-' + code, value: current !== undefined ? pkr(current).replace(/,/g, '') : '' });
  const set = actionButton('Set cap', async () => {
    const paisa = parsePkr(input.value);
    if (paisa === null) throw new Error('the cap must be an amount in PKR, e.g. 250000.00');
    const res = await api('PUT', 'participants/' + encodeURIComponent(code) + '/ndc', { ndc: paisa });
    toast(outcome(res, code + ': cap set to PKR ' + pkr(paisa)));
    if (after) after(res);
  }, { 'data-testid': 'cap-set-' + code });
  return el('span', { class: 'inline-form' }, input, set);
}

// ---- positions ----

function capBar(p, warn) {
  // the exposure the cap limits is reserved - posted (as the switch counts
  // it): a debit posted, then what is reserved beyond any credit
  const debit = Math.max(0, -p.posted);
  const held = p.posted >= 0 ? Math.max(0, p.reserved - p.posted) : p.reserved;
  const scale = p.ndc > 0 ? p.ndc : Math.max(1, debit + held);
  const posted = el('div', { class: 'bar-posted', title: 'posted debit PKR ' + pkr(debit) });
  const reserved = el('div', { class: 'bar-reserved', title: 'reserved PKR ' + pkr(p.reserved) });
  const postedPct = Math.min(100, (100 * debit) / scale);
  posted.style.width = postedPct + '%';
  reserved.style.width = Math.min(100 - postedPct, (100 * held) / scale) + '%';
  const mark = el('div', { class: 'bar-warn', title: 'warning at ' + warn + ' %' });
  mark.style.left = Math.min(100, warn) + '%';
  return el('div', { class: 'bar' + (p.warning ? ' warning' : ''), 'data-testid': 'bar-' + p.code }, posted, reserved, mark);
}

export function positions(main) {
  return every(2000, async () => {
    let body;
    try {
      body = (await api('GET', 'positions')).body;
    } catch (e) {
      failure(main, e);
      return;
    }
    if (main.contains(document.activeElement) && document.activeElement.tagName === 'INPUT') return; // typing a cap
    const warn = body.warn_percent;
    fill(main,
      head('Positions', el('span', { class: 'muted' }, 'window ' + body.window + ' · warning at ' + warn + ' % of the cap · ',
        el('span', { class: 'legend posted' }, 'posted'), ' ', el('span', { class: 'legend reserved' }, 'reserved'))),
      el('section', { class: 'panel' }, table([
        { title: 'Participant', value: (p) => el('a', { href: '#/participants/' + encodeURIComponent(p.code) }, p.code) },
        { title: 'Status', value: (p) => statusBadge(p.status) },
        { title: 'Posted', class: 'num', value: (p) => pkr(p.posted) },
        { title: 'Reserved', class: 'num', value: (p) => pkr(p.reserved) },
        { title: 'Cap', class: 'num', value: (p) => pkr(p.ndc) },
        { title: 'Headroom', class: 'num', value: (p) => pkr(p.headroom) },
        { title: 'Used of cap', class: 'barcol', value: (p) => el('div', { class: 'barwrap' }, capBar(p, warn), el('span', { class: 'pct' + (p.warning ? ' bad' : '') }, p.used_percent + ' %')) },
        { title: 'Change cap', value: (p) => (may('ndc') ? capForm(p.code, p.ndc) : '') },
      ], body.positions, { testid: 'positions' })));
  });
}

// ---- participants ----

function addForm(after) {
  const code = el('input', { type: 'text', name: 'code', maxlength: 4, size: 6, placeholder: 'CODE', 'aria-label': 'Code', 'data-testid': 'add-code' });
  const name = el('input', { type: 'text', name: 'name', maxlength: 140, size: 28, placeholder: 'Name', 'aria-label': 'Name', 'data-testid': 'add-name' });
  const kind = el('select', { name: 'kind', 'aria-label': 'Kind', 'data-testid': 'add-kind' }, ['wallet', 'bank', 'bnpl'].map((k) => el('option', { value: k }, k)));
  const ndc = el('input', { type: 'text', name: 'ndc', size: 12, placeholder: 'Cap, PKR', 'aria-label': 'Cap in PKR', 'data-testid': 'add-ndc' });
  const add = actionButton('Add participant', async () => {
    const paisa = ndc.value.trim() === '' ? 0 : parsePkr(ndc.value);
    if (paisa === null) throw new Error('the cap must be an amount in PKR');
    const res = await api('POST', 'participants', { code: code.value.trim(), name: name.value, kind: kind.value, ndc: paisa });
    toast(outcome(res, 'Participant ' + code.value.trim() + ' added'));
    code.value = name.value = ndc.value = '';
    after();
  }, { 'data-testid': 'add-submit' });
  return el('section', { class: 'panel' }, el('h3', {}, 'Add a participant'), el('div', { class: 'form-row' }, code, name, kind, ndc, add));
}

export function participants(main) {
  const list = el('section', { class: 'panel' });
  fill(main, head('Participants'), list, may('participant_add') ? addForm(() => render()) : null);
  async function render() {
    try {
      const { body } = await api('GET', 'participants');
      fill(list, table([
        { title: 'Code', value: (p) => el('a', { href: '#/participants/' + encodeURIComponent(p.code) }, p.code) },
        { title: 'Name', value: (p) => el('span', { class: 'pname' }, p.name) },
        { title: 'Kind', value: (p) => p.kind },
        { title: 'Status', value: (p) => statusBadge(p.status) },
        { title: 'Sessions', class: 'num', value: (p) => count(p.sessions) },
        { title: 'Cap', class: 'num', value: (p) => pkr(p.ndc) },
        { title: 'Posted', class: 'num', value: (p) => pkr(p.posted) },
        { title: 'Headroom', class: 'num', value: (p) => pkr(p.headroom) },
      ], body.participants, { testid: 'participants', rowAttrs: (p) => ({ 'data-code': p.code }) }));
    } catch (e) {
      fill(list, el('p', { class: 'error' }, e.message));
    }
  }
  return every(3000, render);
}

export function participant(main, params) {
  const code = params.id;
  const box = el('div');
  const actions = el('div', { class: 'actions' });
  fill(main, head('Participant ' + code, el('a', { href: '#/participants' }, '← all participants')), box, actions);
  let shownStatus = null;
  function drawActions(p) {
    if (shownStatus === p.status) return;
    shownStatus = p.status;
    fill(actions,
      p.status === 'active' && may('suspend') ? actionButton('Suspend', async () => {
        if (!window.confirm('Suspend ' + code + '? Its new payments are refused at once and its sessions close.')) return;
        const res = await api('POST', 'participants/' + encodeURIComponent(code) + '/suspend');
        toast(outcome(res, code + ' suspended'));
        shownStatus = null;
        await render();
      }, { class: 'danger', 'data-testid': 'suspend' }) : null,
      p.status === 'suspended' && may('resume') ? actionButton('Resume', async () => {
        const res = await api('POST', 'participants/' + encodeURIComponent(code) + '/resume');
        toast(outcome(res, code + ' resumed'));
        shownStatus = null;
        await render();
      }, { 'data-testid': 'resume' }) : null,
      may('ndc') ? capForm(code, p.ndc, () => render()) : null);
  }
  async function render() {
    try {
      const p = (await api('GET', 'participants/' + encodeURIComponent(code))).body.participant;
      fill(box, el('section', { class: 'panel' }, facts([
        ['Code', p.code], ['Name', el('span', { class: 'pname', 'data-testid': 'participant-name' }, p.name)], ['Kind', p.kind],
        ['Status', el('span', { 'data-testid': 'participant-status' }, statusBadge(p.status))],
        ['Live sessions', el('span', { 'data-testid': 'participant-sessions' }, count(p.sessions))],
        ['Net debit cap', 'PKR ' + pkr(p.ndc)], ['Posted', 'PKR ' + pkr(p.posted)], ['Reserved', 'PKR ' + pkr(p.reserved)],
        ['Headroom', 'PKR ' + pkr(p.headroom)], ['Used of cap', p.used_percent + ' %' + (p.warning ? ' (over the warning threshold)' : '')],
      ]), el('p', {}, el('a', { href: '#/transfers' + query({ participant: p.code }) }, 'Transfers of ' + p.code + ' →'))));
      drawActions(p);
    } catch (e) {
      failure(main, e);
    }
  }
  return every(2000, render);
}

// ---- settlement windows ----

export function windows(main) {
  const list = el('section', { class: 'panel' });
  const close = may('window_close') ? actionButton('Close the open window', async () => {
    if (!window.confirm('Close the open settlement window? A new one opens at once.')) return;
    const { body } = await api('POST', 'windows/close');
    toast('Window ' + body.closed + ' closed (' + count(body.postings) + ' postings, PKR ' + pkr(body.gross) + '); window ' + body.opened + ' opened');
    await render();
  }, { class: 'danger', 'data-testid': 'window-close' }) : null;
  fill(main, head('Settlement windows', close), list);
  async function render() {
    try {
      const { body } = await api('GET', 'windows');
      fill(list, table([
        { title: 'Window', value: (w) => (w.state === 'open' ? String(w.id) : el('a', { href: '#/windows/' + w.id }, String(w.id))) },
        { title: 'State', value: (w) => statusBadge(w.state) },
        { title: 'Opened', class: 'nowrap', value: (w) => when(w.opened_at) },
        { title: 'Closed', class: 'nowrap', value: (w) => when(w.closed_at) },
        { title: 'Settled', class: 'nowrap', value: (w) => when(w.settled_at) },
        { title: 'Postings', class: 'num', value: (w) => count(w.postings) },
        { title: 'Gross', class: 'num', value: (w) => pkr(w.gross) },
        { title: 'By', value: (w) => [w.closed_by, w.settled_by].filter(Boolean).join(' / ') },
        { title: '', value: (w) => (w.state === 'open' ? '' : el('a', { href: '#/windows/' + w.id, 'data-testid': 'report-' + w.id }, 'Net settlement report')) },
      ], body.windows, { testid: 'windows' }));
    } catch (e) {
      fill(list, el('p', { class: 'error' }, e.message));
    }
  }
  return every(3000, render);
}

export function windowReport(main, params) {
  const id = params.id;
  async function render() {
    let body;
    try {
      body = (await api('GET', 'windows/' + encodeURIComponent(id) + '/report')).body;
    } catch (e) {
      failure(main, e);
      return;
    }
    const w = body.window;
    const settle = w.state === 'closed' && may('settle') ? actionButton('Settle window ' + id, async () => {
      if (!window.confirm('Settle window ' + id + '? The nets move between the position and settlement accounts.')) return;
      const res = await api('POST', 'windows/' + encodeURIComponent(id) + '/settle');
      toast(outcome(res, 'Window ' + id + ' settled'));
      await render();
    }, { 'data-testid': 'window-settle' }) : null;
    fill(main,
      head('Window ' + id + ': net settlement', el('a', { href: '#/windows' }, '← all windows')),
      el('section', { class: 'panel' }, facts([
        ['State', el('span', { 'data-testid': 'window-state' }, statusBadge(w.state))], ['Opened', when(w.opened_at)], ['Closed', when(w.closed_at)],
        ['Settled', when(w.settled_at)], ['Postings', count(w.postings)], ['Gross', 'PKR ' + pkr(w.gross)],
      ])),
      el('section', { class: 'panel' },
        el('div', { class: 'panel-head' }, el('h3', {}, 'Net positions'),
          el('a', { class: 'button', href: '/api/v1/windows/' + encodeURIComponent(id) + '/report?format=csv', download: 'window-' + id + '-report.csv', 'data-testid': 'report-csv' }, 'Download CSV')),
        table([
          { title: 'Participant', value: (p) => p.participant },
          { title: 'Account', class: 'num', value: (p) => String(p.account_id) },
          { title: 'Net (PKR)', class: 'num', value: (p) => el('span', { class: p.net < 0 ? 'neg' : '' }, pkr(p.net)) },
          { title: 'Postings', class: 'num', value: (p) => count(p.postings) },
        ], body.positions, { testid: 'report' }),
        el('p', { class: 'total' }, 'Total: PKR ' + pkr(body.total) + (body.total === 0 ? ' (balanced)' : ' — NOT BALANCED'))),
      el('div', { class: 'actions' }, settle));
  }
  render();
  return () => {};
}

// ---- transfers ----

const FILTERS = [
  ['msg_id', 'Message id'], ['end_to_end_id', 'End-to-end id'], ['participant', 'Participant (payer or payee)'],
  ['ref', 'Loan or invoice reference'],
];

function isoOrEmpty(local) {
  if (!local) return '';
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

function localOf(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const off = d.getTimezoneOffset() * 60000;
  return new Date(d.getTime() - off).toISOString().slice(0, 16);
}

function refOf(t) {
  if (t.loan_id) return t.loan_id + (t.instalment ? ' #' + t.instalment : '');
  return t.invoice_number || '';
}

export function transfers(main, params) {
  const q = params.query;
  const inputs = {};
  const fields = FILTERS.map(([key, label]) => {
    inputs[key] = el('input', { type: 'text', name: key, value: q.get(key) || '', maxlength: key === 'participant' ? 4 : 35, 'data-testid': 'search-' + key });
    return el('label', {}, el('span', {}, label), inputs[key]);
  });
  inputs.status = el('select', { name: 'status', 'data-testid': 'search-status' }, [['', 'any'], ['ACSC', 'settled (ACSC)'], ['RJCT', 'rejected (RJCT)']].map(([v, t]) => el('option', { value: v, selected: q.get('status') === v }, t)));
  inputs.purpose = el('select', { name: 'purpose', 'data-testid': 'search-purpose' }, [['', 'any'], ['P2P', 'P2P'], ['BNPL_REPAYMENT', 'BNPL repayment'], ['SUPPLIER_PAYMENT', 'supplier payment']].map(([v, t]) => el('option', { value: v, selected: q.get('purpose') === v }, t)));
  inputs.from = el('input', { type: 'datetime-local', name: 'from', value: localOf(q.get('from')), 'data-testid': 'search-from' });
  inputs.to = el('input', { type: 'datetime-local', name: 'to', value: localOf(q.get('to')), 'data-testid': 'search-to' });
  inputs.limit = el('select', { name: 'limit' }, ['25', '50', '100', '200'].map((v) => el('option', { value: v, selected: (q.get('limit') || '50') === v }, v)));
  const form = el('form', { class: 'search', 'data-testid': 'search-form' },
    fields,
    el('label', {}, el('span', {}, 'Status'), inputs.status),
    el('label', {}, el('span', {}, 'Purpose'), inputs.purpose),
    el('label', {}, el('span', {}, 'Received from (local time)'), inputs.from),
    el('label', {}, el('span', {}, 'Received before'), inputs.to),
    el('label', {}, el('span', {}, 'Per page'), inputs.limit),
    el('div', { class: 'search-buttons' }, el('button', { type: 'submit', 'data-testid': 'search-submit' }, 'Search'), el('a', { href: '#/transfers', class: 'button secondary' }, 'Clear')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = {};
    for (const [key] of FILTERS) p[key] = inputs[key].value.trim();
    p.participant = p.participant.toUpperCase();
    p.status = inputs.status.value;
    p.purpose = inputs.purpose.value;
    p.from = isoOrEmpty(inputs.from.value);
    p.to = isoOrEmpty(inputs.to.value);
    p.limit = inputs.limit.value === '50' ? '' : inputs.limit.value;
    const target = '#/transfers' + query(p);
    if (location.hash === target) run();
    else location.hash = target;
  });
  const results = el('section', { class: 'panel', 'data-testid': 'search-results' });
  fill(main, head('Transfers'), el('section', { class: 'panel' }, form), results);

  async function run() {
    fill(results, el('p', { class: 'muted' }, 'Searching…'));
    const p = {};
    for (const [k, v] of q.entries()) p[k] = v;
    let body;
    try {
      body = (await api('GET', 'transfers' + query(p))).body;
    } catch (e) {
      fill(results, el('p', { class: 'error', 'data-testid': 'search-error' }, e.message));
      return;
    }
    const rows = body.transfers;
    const more = body.next !== null && body.next !== undefined;
    const nextHash = () => { const n = Object.assign({}, p, { before: String(body.next) }); return '#/transfers' + query(n); };
    fill(results,
      el('div', { class: 'panel-head' }, el('h3', {}, rows.length + (rows.length === 1 ? ' transfer' : ' transfers') + (p.before ? ' older than ' + p.before : '')),
        p.before ? el('a', { href: '#/transfers' + query(Object.assign({}, p, { before: '' })) }, '← newest') : null),
      table([
        { title: 'Id', value: (t) => el('a', { href: '#/transfers/' + t.id, 'data-testid': 'transfer-link' }, String(t.id)) },
        { title: 'Received', class: 'nowrap', value: (t) => when(t.received_at) },
        { title: 'Payer → payee', value: (t) => t.payer + ' → ' + t.payee },
        { title: 'Amount (PKR)', class: 'num', value: (t) => pkr(t.amount) },
        { title: 'Fee', class: 'num', value: (t) => pkr(t.fee) },
        { title: 'Purpose', value: (t) => (t.kind === 'return' ? 'return' : t.purpose) },
        { title: 'Reference', value: (t) => refOf(t) },
        { title: 'Status', value: (t) => [statusBadge(t.status), t.reason ? ' ' + t.reason : ''] },
        { title: 'Message id', value: (t) => el('code', {}, t.msg_id) },
      ], rows, { testid: 'transfers', empty: body.partial ? 'None among the transfers searched so far.' : 'No transfer matches.' }),
      body.partial ? el('p', { class: 'muted' }, 'Searched the most recent transfers only (a search without a message id, reference or RJCT status reads at most 20,000 per page).') : null,
      more ? el('p', {}, el('a', { class: 'button', href: nextHash(), 'data-testid': 'search-next' }, body.partial ? 'Search older transfers →' : 'Older →')) : null);
  }
  run(); // no filter: the latest transfers
  return () => {};
}

export function transfer(main, params) {
  const id = params.id;
  (async () => {
    let body;
    try {
      body = (await api('GET', 'transfers/' + encodeURIComponent(id))).body;
    } catch (e) {
      failure(main, e);
      return;
    }
    const t = body.transfer;
    const done = body.state === 'done';
    fill(main,
      head('Transfer ' + id, el('a', { href: '#/transfers' }, '← search')),
      el('div', { class: 'two' },
        el('section', { class: 'panel' }, el('h3', {}, done ? 'Details' : 'In flight: ' + body.state), facts([
          ['Kind', t.kind], ['Status', [statusBadge(t.status), t.reason ? ' ' + t.reason : '']], ['Reason text', t.reason_text],
          ['Payer', t.payer], ['Payee', t.payee], ['Amount', 'PKR ' + pkr(t.amount)], ['Fee', t.fee ? 'PKR ' + pkr(t.fee) + ' paid by ' + (t.fee_payer || '—') : 'none'],
          ['Purpose', t.purpose], ['Loan', t.loan_id ? t.loan_id + (t.instalment ? ', instalment ' + t.instalment : '') : ''], ['Invoice', t.invoice_number],
          ['Remittance', t.remittance_text], ['Message id', el('code', { 'data-testid': 'detail-msg-id' }, t.msg_id)], ['End-to-end id', t.end_to_end_id],
          ['Debtor account', t.debtor_account], ['Creditor account', t.creditor_account], ['Window', t.window_id],
          ['Original transfer', t.original_id ? el('a', { href: '#/transfers/' + t.original_id }, String(t.original_id)) : ''], ['Return reason', t.return_reason],
        ])),
        el('section', { class: 'panel' }, el('h3', {}, 'Timeline'),
          el('ol', { class: 'timeline', 'data-testid': 'timeline' }, (body.timeline || []).map((ev) => el('li', { class: 'ev-' + ev.event },
            el('span', { class: 'ev-name' }, ev.event), el('span', { class: 'ev-at' }, ev.at ? when(ev.at) : 'time not recorded'),
            ev.event === 'returned' ? el('span', {}, ' ', el('a', { href: '#/transfers/' + ev.id }, 'return ' + ev.id), ' PKR ' + pkr(ev.amount), ' ', statusBadge(ev.status)) : null,
            ev.event === 'forwarded' && ev.payee ? el('span', {}, ' to ' + ev.payee) : null,
            ev.event === 'decided' && ev.status ? el('span', {}, ' ', statusBadge(ev.status)) : null,
            ev.reason ? el('span', {}, ' ' + ev.reason) : null))),
          body.payee_notice ? el('p', { class: 'muted' }, 'Payee\'s notice: ' + body.payee_notice) : null,
          el('p', { class: 'muted small' }, 'An acknowledgement removes the payee\'s notice without keeping its time.'))),
      done ? el('section', { class: 'panel' }, el('h3', {}, 'Ledger legs'), table([
        { title: 'Leg', value: (e) => e.leg },
        { title: 'Account', value: (e) => (e.participant || 'scheme') + ' ' + e.account_kind + ' #' + e.account_id },
        { title: 'Amount (PKR)', class: 'num', value: (e) => el('span', { class: e.amount < 0 ? 'neg' : '' }, pkr(e.amount)) },
        { title: 'Window', class: 'num', value: (e) => String(e.window_id) },
      ], body.entries || [], { empty: 'No legs: nothing was posted.' })) : null,
      done && (body.returns || []).length ? el('section', { class: 'panel' }, el('h3', {}, 'Returns'),
        el('ul', {}, body.returns.map((r) => el('li', {}, el('a', { href: '#/transfers/' + r }, 'Transfer ' + r))))) : null);
  })();
  return () => {};
}

// ---- audit ----

function jsonBlock(v) {
  if (v === null || v === undefined) return '—';
  return el('pre', { class: 'json' }, JSON.stringify(v, null, 1));
}

function certOf(a) {
  const c = a.certificate;
  if (!c) return '—';
  if (typeof c === 'string') return c;
  return [c.serial ? 'serial ' + c.serial : '', c.fingerprint ? 'sha256 ' + String(c.fingerprint).slice(0, 16) + '…' : ''].filter(Boolean).join(' · ') || JSON.stringify(c);
}

export function audit(main) {
  const list = el('section', { class: 'panel' });
  fill(main, head('Audit trail', el('span', { class: 'muted' }, 'the latest 200 changes')), list);
  return every(5000, async () => {
    try {
      const { body } = await api('GET', 'audit?limit=200');
      fill(list, table([
        { title: 'When', class: 'nowrap', value: (a) => when(a.at) },
        { title: 'Who', value: (a) => [a.operator, a.role ? ' (' + a.role + ')' : ''] },
        { title: 'Action', value: (a) => el('code', {}, a.action) },
        { title: 'Target', value: (a) => a.target },
        { title: 'Certificate', value: (a) => certOf(a) },
        { title: 'Before', value: (a) => jsonBlock(a.before) },
        { title: 'After', value: (a) => jsonBlock(a.after) },
      ], body.audit, { testid: 'audit', empty: 'No change recorded yet.' }));
    } catch (e) {
      fill(list, el('p', { class: 'error' }, e.message));
    }
  });
}

// ---- four-eyes proposals ----

// What this operator may do with a pending proposal: its proposer may
// withdraw it; the others approve or reject it (the API checks the same).
function decisionButtons(p) {
  if (p.state !== 'pending') return '';
  if (p.proposed_by === me.name) {
    return may('withdraw') ? actionButton('Withdraw', async () => {
      await api('POST', 'proposals/' + p.id + '/withdraw');
      toast('Proposal ' + p.id + ' withdrawn');
    }, { class: 'danger', 'data-testid': 'withdraw-' + p.id }) : '';
  }
  if (!may('approve')) return '';
  return el('span', { class: 'inline-form' },
    actionButton('Approve', async () => {
      const res = await api('POST', 'proposals/' + p.id + '/approve');
      toast('Proposal ' + p.id + ' approved: ' + p.action + ' ' + (p.target || '') + ' done');
      return res;
    }, { 'data-testid': 'approve-' + p.id }),
    actionButton('Reject', async () => {
      await api('POST', 'proposals/' + p.id + '/reject');
      toast('Proposal ' + p.id + ' rejected');
    }, { class: 'danger', 'data-testid': 'reject-' + p.id }));
}

export function proposals(main, params) {
  const state = params.query.get('state') || 'pending';
  const list = el('section', { class: 'panel' });
  const picker = el('select', { 'aria-label': 'State', 'data-testid': 'proposal-state' }, ['pending', 'approved', 'rejected', 'expired', 'withdrawn'].map((s) => el('option', { value: s, selected: s === state }, s)));
  picker.addEventListener('change', () => { location.hash = '#/proposals?state=' + picker.value; });
  fill(main, head('Proposals', picker), list);
  return every(3000, async () => {
    let body;
    try {
      body = (await api('GET', 'proposals?state=' + encodeURIComponent(state))).body;
    } catch (e) {
      fill(list, el('p', { class: 'error' }, e.message));
      return;
    }
    fill(list, table([
      { title: 'Id', value: (p) => String(p.id) },
      { title: 'Action', value: (p) => el('code', {}, p.action) },
      { title: 'Target', value: (p) => p.target },
      { title: 'Parameters', value: (p) => (p.params && typeof p.params.ndc === 'number' ? 'cap PKR ' + pkr(p.params.ndc) : jsonBlock(p.params)) },
      { title: 'Proposed by', value: (p) => [p.proposed_by, p.proposed_role ? ' (' + p.proposed_role + ')' : ''] },
      { title: 'Proposed', class: 'nowrap', value: (p) => when(p.proposed_at) },
      { title: 'Expires', class: 'nowrap', value: (p) => when(p.expires_at) },
      { title: 'State', value: (p) => [statusBadge(p.state), p.decided_by ? ' by ' + p.decided_by : '', p.reason ? ' — ' + p.reason : ''] },
      { title: '', value: (p) => decisionButtons(p) },
    ], body.proposals, { testid: 'proposals', empty: 'No ' + state + ' proposal.' }));
  });
}

export { badge };
