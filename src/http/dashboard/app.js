// DelTran live dashboard: plain JavaScript, no framework, no build step.
//
// Where the figures come from:
//   - REST (/api/v1, `Authorization: Bearer <key>`), polled every POLL_MS and at once
//     after a window or settlement event: the open window and its transfer count,
//     each bank's positions, the last netted windows, the pending instructions;
//   - the WebSocket feed (/ws?token=<key>): transfers, window and settlement events,
//     notifications (shown in the feed list) and bank positions (applied at once).
// Amounts are the API's decimal strings, shown with grouped digits but never through
// a float; a float ratio only sizes the exposure bars. Every figure the page shows is
// in an element with `data-field` and the API's text in `data-value`, so a test can
// read them back (loadtest/dashboard_check.mjs).
(function () {
  'use strict';

  const KEY_STORAGE = 'deltran.dashboard.key';
  const POLL_MS = 1500;
  const FEED_MAX = 200;
  const FEED_FLUSH_MS = 250;
  const NETTED_SHOWN = 5;
  const PENDING_SHOWN = 50;
  const PING_MS = 5000;
  const RECONNECT_MAX_MS = 15000;
  const WARNING_SHARE = 0.8; // the engine's limit_warning threshold
  const CHANNELS = ['transactions', 'windows', 'settlements', 'positions', 'notifications'];
  const NETTED_STATES = ['netted', 'settled', 'settlement_failed'];

  const $ = (id) => document.getElementById(id);

  /** The signed-in session; null when signed out. Late answers of an ended session
   *  are ignored by comparing against it. */
  let session = null;

  // ---------------------------------------------------------------- formatting

  /** "1234567.89" → "1,234,567.89": digits grouped as text, never through a float. */
  function groupDigits(text) {
    const m = /^(-?)(\d+)(\.\d+)?$/.exec(String(text));
    if (!m) return String(text);
    return m[1] + m[2].replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (m[3] || '');
  }

  /** A ratio's decimal text as a percentage, by moving the point: "0.873214" → "87.3214 %". */
  function ratioAsPercent(text) {
    const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(text));
    if (!m) return String(text);
    const fraction = (m[3] || '').padEnd(2, '0');
    const whole = (m[2] + fraction.slice(0, 2)).replace(/^0+(?=\d)/, '');
    const rest = fraction.slice(2).replace(/0+$/, '');
    return m[1] + whole + (rest ? '.' + rest : '') + ' %';
  }

  /** A liquidity efficiency's decimal text as "29.4 : 1" (digits grouped); "—" when
   *  the API has none (null: no liquidity was used). */
  function ratioToOne(text) {
    return text === null || text === undefined ? '—' : `${groupDigits(text)} : 1`;
  }

  function clockTime(iso) {
    const t = new Date(iso);
    if (Number.isNaN(t.getTime())) return '—';
    return t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  }

  function countdownText(ms) {
    const seconds = Math.max(0, Math.ceil(ms / 1000));
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = String(seconds % 60).padStart(2, '0');
    return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
  }

  /** A new element: el('td', {class: 'num', dataset: {field: 'gross'}}, 'text', child…). */
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'dataset') Object.assign(node.dataset, value);
      else if (name === 'class') node.className = value;
      else node.setAttribute(name, value === true ? '' : value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  /** A figure from the API: shown grouped, its exact text in data-value. */
  function amount(field, text, extraClass) {
    return el('span', { class: 'amount' + (extraClass ? ' ' + extraClass : ''), dataset: { field, value: text } },
      groupDigits(text));
  }

  // ---------------------------------------------------------------- the API

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title || problem.code)) || `HTTP ${status}`);
      this.status = status;
      this.code = (problem && problem.code) || (status === 0 ? 'unreachable' : `http_${status}`);
    }
  }

  /** A call to /api/v1 with the session's key; the parsed JSON, or an ApiError. */
  async function api(s, method, path) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: { Authorization: `Bearer ${s.key}`, Accept: 'application/json' },
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (_) {
      throw new ApiError(0, { detail: 'the engine did not answer' });
    }
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  /** The key's role and, for a bank's key, its bank. Only the operator and auditors
   *  may list keys (a bank's key gets 403); the list names each key's role by id. A
   *  bank's key sees the caps of its own bank only, which names its bank. */
  async function identify(s) {
    const id = (/^dtk_([0-9a-fA-F]{32})_/.exec(s.key) || [])[1];
    try {
      const list = await api(s, 'GET', '/api/v1/keys');
      const own = list.keys.find((k) => id && k.id.toLowerCase() === id.toLowerCase());
      // Whoever lists keys reads everything; without its own entry, read-only.
      s.role = own ? own.role : 'auditor';
    } catch (e) {
      if (e.status !== 403) throw e;
      s.role = 'bank';
      const banks = await api(s, 'GET', '/api/v1/banks');
      const own = banks.banks.find((b) => b.net_debit_caps !== undefined);
      s.bank = own ? own.code : null;
    }
  }

  // ---------------------------------------------------------------- sign in and out

  function showSignIn(message) {
    document.body.dataset.signedIn = 'false';
    $('board').hidden = true;
    $('session').hidden = true;
    $('sign-in').hidden = false;
    const error = $('sign-in-error');
    error.textContent = message || '';
    error.hidden = !message;
    $('key').value = '';
    $('key').focus();
  }

  async function signIn(key, fromStorage) {
    const s = newSession(key);
    session = s;
    try {
      await identify(s);
    } catch (e) {
      if (session !== s) return;
      session = null;
      sessionStorage.removeItem(KEY_STORAGE);
      if (e.status === 401) {
        showSignIn(`The engine refused this key (${e.code}).`);
      } else if (fromStorage) {
        // Keep the stored key: the engine may be restarting. Try again shortly.
        showSignIn(`Cannot reach the engine (${e.code}); retrying…`);
        sessionStorage.setItem(KEY_STORAGE, key);
        setTimeout(() => { if (!session) signIn(key, true); }, 3000);
      } else {
        showSignIn(`Cannot sign in: ${e.message} (${e.code}).`);
      }
      return;
    }
    if (session !== s) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    start(s);
  }

  function signOut(message) {
    const s = session;
    session = null;
    sessionStorage.removeItem(KEY_STORAGE);
    if (s) stop(s);
    clearBoard();
    showSignIn(message);
  }

  function newSession(key) {
    return {
      key,
      role: null,
      bank: null,
      timers: [],
      ws: null,
      wsAttempts: 0,
      clockOffsetMs: null, // server time minus this browser's, from the feed's timestamps
      window: null, // the open window as the API answered
      closesAtMs: null,
      netted: new Map(), // window id → detail, once netted (its figures no longer change)
      banks: null, // bank codes shown
      refreshing: false,
      refreshAgain: false,
      refreshes: 0,
      feedQueue: [],
      feedItems: 0,
      busy: false,
    };
  }

  // ---------------------------------------------------------------- the board

  function start(s) {
    document.body.dataset.signedIn = 'true';
    document.body.dataset.role = s.role;
    document.body.dataset.bank = s.bank || '';
    $('sign-in').hidden = true;
    $('board').hidden = false;
    $('session').hidden = false;
    $('role').textContent = s.role === 'bank' ? `bank ${s.bank || '?'}` : s.role;
    $('role').dataset.role = s.role;
    for (const node of document.querySelectorAll('.operator-only')) node.hidden = s.role !== 'operator';
    notice(null);
    connectFeed(s);
    refresh(s);
    s.timers.push(setInterval(() => refresh(s), POLL_MS));
    s.timers.push(setInterval(() => tickCountdown(s), 250));
    s.timers.push(setInterval(() => flushFeed(s), FEED_FLUSH_MS));
  }

  function stop(s) {
    for (const t of s.timers) clearInterval(t);
    s.timers = [];
    if (s.ws) {
      s.ws.onclose = null;
      s.ws.close(1000, 'signed out');
      s.ws = null;
    }
  }

  function clearBoard() {
    delete document.body.dataset.role;
    delete document.body.dataset.bank;
    delete document.body.dataset.refreshes;
    $('window-id').textContent = '';
    for (const id of ['transfer-count', 'countdown', 'opened-at', 'closes-at']) $(id).textContent = '—';
    $('netted-rows').replaceChildren(el('tr', { class: 'empty' }, el('td', { colspan: 10 }, 'No window netted yet.')));
    $('bank-list').replaceChildren();
    $('pending-list').replaceChildren();
    $('pending-count').textContent = '';
    $('feed-list').replaceChildren();
    notice(null);
  }

  let noticeTimer = null;

  /** A line above the board: what an action did (for a while), or what goes wrong. */
  function notice(text, kind) {
    const node = $('notice');
    node.textContent = text || '';
    node.hidden = !text;
    node.dataset.kind = kind || 'info';
    clearTimeout(noticeTimer);
    if (text && kind === 'action') noticeTimer = setTimeout(() => notice(null), 8000);
  }

  /** What a failed call means for the board: a refused key signs out; the rest is a
   *  notice, and polling goes on. */
  function failed(s, e, what) {
    if (session !== s) return;
    if (e.status === 401) {
      signOut(`The engine refused the key (${e.code}). Sign in again.`);
    } else if (e.status === 429) {
      notice(`Rate limited while reading ${what}; slowing down.`, 'warning');
    } else if (e.status === 0) {
      notice('The engine does not answer; retrying.', 'error');
    } else {
      notice(`Reading ${what}: ${e.message} (${e.code}).`, 'error');
    }
  }

  /** One round of reads; a round asked for while one runs follows it at once. */
  async function refresh(s) {
    if (s.refreshing) {
      s.refreshAgain = true;
      return;
    }
    s.refreshing = true;
    let ok = true;
    const step = async (what, read) => {
      try {
        await read();
      } catch (e) {
        ok = false;
        failed(s, e, what);
      }
    };
    await Promise.all([
      step('the open window', () => refreshWindow(s)),
      step('the netted windows', () => refreshNetted(s)),
      step('the positions', () => refreshPositions(s)),
      step('the instructions', () => refreshPending(s)),
    ]);
    if (session !== s) return;
    if (ok && $('notice').dataset.kind !== 'action') notice(null);
    s.refreshes += 1;
    document.body.dataset.refreshes = String(s.refreshes);
    s.refreshing = false;
    if (s.refreshAgain) {
      s.refreshAgain = false;
      refresh(s);
    }
  }

  // ---------------------------------------------------------------- open window

  async function refreshWindow(s) {
    const w = await api(s, 'GET', '/api/v1/windows/current');
    if (session !== s) return;
    s.window = w;
    s.closesAtMs = w.closes_at ? Date.parse(w.closes_at) : null;
    const card = $('open-window');
    card.dataset.windowId = String(w.id);
    $('window-id').textContent = `#${w.id}`;
    $('window-id').dataset.value = String(w.id);
    const count = $('transfer-count');
    count.textContent = groupDigits(String(w.transfer_count));
    count.dataset.value = String(w.transfer_count);
    $('opened-at').textContent = clockTime(w.opened_at);
    $('closes-at').textContent = w.closes_at ? clockTime(w.closes_at) : 'under way';
    tickCountdown(s);
  }

  function tickCountdown(s) {
    const node = $('countdown');
    if (s.closesAtMs === null) {
      node.textContent = s.window ? 'closing' : '—';
      return;
    }
    const now = Date.now() + (s.clockOffsetMs || 0);
    const left = s.closesAtMs - now;
    node.textContent = left > 0 ? countdownText(left) : '0:00';
    node.dataset.urgent = String(left < 10000);
  }

  async function closeWindow() {
    const s = session;
    if (!s || s.role !== 'operator' || s.busy) return;
    s.busy = true;
    const button = $('close-window');
    button.disabled = true;
    try {
      const answer = await api(s, 'POST', '/api/v1/windows/current/close');
      notice(`Window ${answer.closed_window_id} closed; window ${answer.next_window_id} is open. Netting follows.`, 'action');
    } catch (e) {
      if (e.status === 401) return failed(s, e, 'the close');
      notice(`The window was not closed: ${e.message} (${e.code}).`, 'error');
    } finally {
      s.busy = false;
      button.disabled = false;
      if (session === s) refresh(s);
    }
  }

  // ---------------------------------------------------------------- netted windows

  async function refreshNetted(s) {
    const list = await api(s, 'GET', `/api/v1/windows?limit=${NETTED_SHOWN + 3}`);
    const wanted = list.windows.filter((w) => NETTED_STATES.includes(w.state)).slice(0, NETTED_SHOWN);
    // A netted window's figures are fixed: read each once, then follow its state.
    await Promise.all(wanted.filter((w) => !s.netted.has(w.id)).map(async (w) => {
      s.netted.set(w.id, await api(s, 'GET', `/api/v1/windows/${w.id}`));
    }));
    if (session !== s) return;
    for (const id of [...s.netted.keys()]) if (!wanted.some((w) => w.id === id)) s.netted.delete(id);
    const rows = [];
    for (const w of wanted) {
      const detail = s.netted.get(w.id);
      const currencies = detail.currencies.length ? detail.currencies : [null];
      currencies.forEach((c, i) => {
        const first = i === 0;
        const span = currencies.length;
        // The queue in this currency: released into the window, and left queued when
        // it was netted.
        const q = c ? (detail.queue || []).find((x) => x.currency === c.currency) : null;
        rows.push(el('tr', { dataset: { window: String(w.id), currency: c ? c.currency : '' }, class: first ? 'first' : '' },
          first ? el('td', { rowspan: span }, `#${w.id}`) : null,
          first ? el('td', { rowspan: span }, el('span', { class: `state state-${w.state}` }, w.state.replace('_', ' '))) : null,
          first ? el('td', { rowspan: span, class: 'num' }, amount('transfer-count', String(w.transfer_count))) : null,
          el('td', {}, c ? c.currency : '—'),
          el('td', { class: 'num' }, c ? amount('gross', c.gross) : ''),
          el('td', { class: 'num' }, c ? amount('net', c.net) : ''),
          el('td', { class: 'num' }, c ? el('span', { class: 'efficiency', dataset: { field: 'efficiency', value: c.efficiency } },
            ratioAsPercent(c.efficiency)) : ''),
          el('td', { class: 'num' }, c ? amount('liquidity-used', c.liquidity_used) : ''),
          // data-value: the API's text, "null" when it has no ratio.
          el('td', { class: 'num' }, c ? el('span', { class: 'efficiency', dataset: { field: 'liquidity-efficiency', value: String(c.liquidity_efficiency) } },
            ratioToOne(c.liquidity_efficiency)) : ''),
          el('td', { class: 'num' }, c ? el('span', { class: 'queue' },
            amount('queue-released', String(q ? q.released_count : 0)), ' · ',
            amount('queue-left', String(q ? q.left_queued_count : 0))) : '')));
      });
    }
    if (!rows.length) rows.push(el('tr', { class: 'empty' }, el('td', { colspan: 9 }, 'No window netted yet.')));
    $('netted-rows').replaceChildren(...rows);
  }

  // ---------------------------------------------------------------- positions

  async function refreshPositions(s) {
    if (s.role === 'bank') {
      s.banks = s.bank ? [s.bank] : [];
    } else if (!s.banks || s.refreshes % 20 === 0) {
      const list = await api(s, 'GET', '/api/v1/banks');
      s.banks = list.banks.map((b) => b.code);
    }
    const views = await Promise.all(s.banks.map(async (code) => {
      try {
        return await api(s, 'GET', `/api/v1/banks/${encodeURIComponent(code)}/positions`);
      } catch (e) {
        if (e.status === 404) return null; // not visible to this key
        throw e;
      }
    }));
    if (session !== s) return;
    const list = $('bank-list');
    for (const node of [...list.children]) if (!s.banks.includes(node.dataset.bank)) node.remove();
    for (const view of views) if (view) showPositions(view);
    if (!list.children.length) list.replaceChildren(el('p', { class: 'empty' }, 'No bank visible to this key.'));
  }

  /** One bank's card (a `GET /banks/{code}/positions` answer or a `position` event). */
  function showPositions(view) {
    const list = $('bank-list');
    const empty = list.querySelector('p.empty');
    if (empty) empty.remove();
    const currencies = view.positions.map((p) => {
      const cap = Number(p.net_debit_cap);
      const exposure = Number(p.exposure);
      // Drawing only: the share of the cap in use, 0 to 1.
      const share = cap > 0 ? Math.min(1, Math.max(0, exposure / cap)) : (exposure > 0 ? 1 : 0);
      const level = share >= WARNING_SHARE ? 'high' : share >= 0.5 ? 'mid' : 'low';
      return el('div', { class: 'currency', dataset: { currency: p.currency } },
        el('div', { class: 'currency-head' },
          el('span', { class: 'code' }, p.currency),
          el('span', { class: 'cap' }, 'cap ', amount('cap', p.net_debit_cap))),
        el('div', { class: 'bar', title: `exposure ${groupDigits(p.exposure)} of cap ${groupDigits(p.net_debit_cap)}` },
          el('div', { class: `fill ${level}`, dataset: { share: share.toFixed(4) } })),
        el('dl', {},
          el('div', {}, el('dt', {}, 'position'), el('dd', {}, amount('position', p.position, p.position.startsWith('-') ? 'debit' : 'credit'))),
          el('div', {}, el('dt', {}, 'exposure'), el('dd', {}, amount('exposure', p.exposure))),
          el('div', {}, el('dt', {}, 'headroom'), el('dd', {}, amount('headroom', p.headroom))),
          // A prefunded bank's settlement balance (its headroom is bounded by it too).
          p.settlement_balance != null
            ? el('div', { class: 'balance' }, el('dt', {}, 'balance'), el('dd', {}, amount('settlement-balance', p.settlement_balance)))
            : null,
          // The bank's queue in this currency (transfers that asked to wait at the limit).
          p.queued_count > 0
            ? el('div', { class: 'queued' }, el('dt', {}, `queued (${p.queued_count})`), el('dd', {}, amount('queued', p.queued_value)))
            : null));
    });
    const card = el('article', { class: 'bank', dataset: { bank: view.bank, status: view.status } },
      el('h3', {}, view.bank, view.status !== 'active' ? el('span', { class: 'status' }, view.status) : null,
        view.current === false ? el('span', { class: 'status' }, 're-reading') : null),
      ...(currencies.length ? currencies : [el('p', { class: 'empty' }, 'no currency')]));
    // Bar widths through the CSSOM (the policy allows no inline style attributes).
    for (const fill of card.querySelectorAll('.fill')) fill.style.width = `${(Number(fill.dataset.share) * 100).toFixed(2)}%`;
    const old = [...list.children].find((n) => n.dataset.bank === view.bank);
    if (old) old.replaceWith(card);
    else list.insertBefore(card, [...list.children].find((n) => n.dataset.bank > view.bank) || null);
  }

  // ---------------------------------------------------------------- instructions

  async function refreshPending(s) {
    const answer = await api(s, 'GET', `/api/v1/settlements?state=pending&limit=${PENDING_SHOWN}`);
    if (session !== s) return;
    const items = answer.settlements.map((i) => el('li', { dataset: { instruction: i.id, window: String(i.window_id) } },
      el('span', { class: 'window' }, `#${i.window_id}`),
      el('span', { class: 'parties' }, `${i.payer} → ${i.payee}`),
      el('span', { class: 'sum' }, amount('amount', i.amount), ' ', i.currency),
      s.role === 'operator' ? el('button', { type: 'button', class: 'confirm', dataset: { confirm: i.id } }, 'Confirm') : null));
    $('pending-count').textContent = answer.next_cursor ? `${items.length}+` : String(items.length);
    $('pending-list').replaceChildren(...(items.length ? items : [el('li', { class: 'empty' }, 'None pending.')]));
    $('confirm-all').disabled = !items.length;
  }

  async function confirm(ids) {
    const s = session;
    if (!s || s.role !== 'operator' || s.busy || !ids.length) return;
    s.busy = true;
    const buttons = document.querySelectorAll('#instructions button');
    for (const b of buttons) b.disabled = true;
    let done = 0;
    try {
      for (const id of ids) {
        await api(s, 'POST', `/api/v1/settlements/${encodeURIComponent(id)}/confirm`);
        done += 1;
      }
      notice(`Confirmed ${done} instruction${done === 1 ? '' : 's'}.`, 'action');
    } catch (e) {
      if (e.status === 401) return failed(s, e, 'the confirmation');
      notice(`Confirmed ${done} of ${ids.length}; then: ${e.message} (${e.code}).`, 'error');
    } finally {
      s.busy = false;
      for (const b of buttons) b.disabled = false;
      if (session === s) refresh(s);
    }
  }

  // ---------------------------------------------------------------- the feed

  function connectFeed(s) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/ws?token=${encodeURIComponent(s.key)}`);
    s.ws = ws;
    feedState('connecting');
    let pinger = null;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'subscribe', channels: CHANNELS }));
      ws.send(JSON.stringify({ type: 'ping' }));
      pinger = setInterval(() => {
        // Stops with the connection, or with the session (sign-out drops onclose).
        if (ws.readyState !== WebSocket.OPEN || session !== s) clearInterval(pinger);
        else ws.send(JSON.stringify({ type: 'ping' }));
      }, PING_MS);
    };
    ws.onmessage = (event) => {
      if (session !== s) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      onFeedMessage(s, message);
    };
    ws.onclose = () => {
      clearInterval(pinger);
      if (session !== s || s.ws !== ws) return;
      s.ws = null;
      feedState('reconnecting');
      const delay = Math.min(RECONNECT_MAX_MS, 1000 * 2 ** s.wsAttempts);
      s.wsAttempts += 1;
      const timer = setTimeout(() => { if (session === s) connectFeed(s); }, delay);
      s.timers.push(timer);
    };
  }

  function feedState(state) {
    const node = $('feed-state');
    node.dataset.state = state;
    node.textContent = { connecting: 'feed connecting', live: 'feed live', reconnecting: 'feed reconnecting' }[state];
  }

  function onFeedMessage(s, m) {
    // The server's clock, for the countdown (the best of the samples: least delayed).
    const sent = Date.parse(m.timestamp);
    if (!Number.isNaN(sent)) {
      const offset = sent - Date.now();
      if (s.clockOffsetMs === null || offset > s.clockOffsetMs) s.clockOffsetMs = offset;
    }
    const d = m.data || {};
    switch (m.type) {
      case 'subscribed':
        s.wsAttempts = 0;
        feedState('live');
        if (s.role === 'bank' && d.bank && !s.bank) s.bank = d.bank;
        return;
      case 'pong':
      case 'unsubscribed':
        return;
      case 'position':
        showPositions(d);
        return;
      case 'lagged':
        feed(s, m, 'warning', `The feed fell behind (${d.missed} missed); reconnecting.`);
        return;
      case 'error':
        feed(s, m, 'warning', `Feed error ${d.code}: ${d.message}`);
        return;
      case 'transaction': {
        const rejected = d.status === 'rejected';
        feed(s, m, rejected ? 'rejected' : 'transfer',
          el('span', { class: 'parties' }, `${d.sender_bank} → ${d.receiver_bank}`),
          ' ', amount('amount', d.amount), ` ${d.from_currency}`,
          d.converted_amount ? [' → ', amount('converted', d.converted_amount), ` ${d.to_currency}`] : ` → ${d.to_currency}`,
          rejected ? el('span', { class: 'tag' }, d.reject_code || 'rejected') : el('span', { class: 'tag' }, `window ${d.window_id}`));
        return;
      }
      case 'window_closing':
        feed(s, m, 'window', `Window ${d.id} cut off; window ${d.next_window_id} open.`);
        break;
      case 'window_opened':
        break;
      case 'window_netted':
        feed(s, m, 'window', `Window ${d.id} netted: ${groupDigits(String(d.transfer_count))} transfers`,
          ...(d.currencies || []).map((c) => el('span', { class: 'tag' }, `${c.currency} gross ${groupDigits(c.gross)}, net ${groupDigits(c.net)}`)));
        break;
      case 'window_settled':
        feed(s, m, 'window', `Window ${d.id} settled.`);
        break;
      case 'instruction_created':
      case 'instruction_confirmed':
      case 'instruction_failed':
        feed(s, m, m.type === 'instruction_failed' ? 'warning' : 'settlement',
          `${m.type.replace('instruction_', 'Instruction ')}: ${d.payer} → ${d.payee} `,
          amount('amount', d.amount), ` ${d.currency}`, el('span', { class: 'tag' }, `window ${d.window_id}`));
        break;
      case 'limit_warning':
        feed(s, m, 'warning', `${d.bank} ${d.currency} exposure `, amount('exposure', d.exposure),
          ' passed 80 % of its limit ', amount('cap', d.limit ?? d.net_debit_cap));
        return;
      case 'balance_changed':
        feed(s, m, 'notice', `${d.bank} ${d.currency} settlement balance `, amount('balance', d.balance),
          ` (${d.cause.replace('_', ' ')}${d.window_id ? `, window ${d.window_id}` : ''})`);
        return;
      case 'actor_restarted':
        feed(s, m, 'warning', `The ${d.actor} actor ${d.name} restarted.`);
        return;
      default:
        if (m.channel === 'notifications') {
          feed(s, m, 'notice', `${m.type.replace('_', ' ')}: ${d.code || d.id || ''}`);
        }
        return;
    }
    // Window and settlement events change what the REST reads show.
    refresh(s);
  }

  /** Queues a line for the feed list; lines are added in batches (FEED_FLUSH_MS) and
   *  only the newest FEED_MAX are kept, so a busy feed costs little drawing. */
  function feed(s, message, kind, ...parts) {
    s.feedQueue.push({ at: message.timestamp, kind, type: message.type, parts });
    if (s.feedQueue.length > FEED_MAX) s.feedQueue.splice(0, s.feedQueue.length - FEED_MAX);
  }

  function flushFeed(s) {
    if (!s.feedQueue.length) return;
    const list = $('feed-list');
    const items = s.feedQueue.splice(0).reverse().map((item) => el('li', { class: `kind-${item.kind}`, dataset: { type: item.type } },
      el('time', { datetime: item.at }, clockTime(item.at)),
      el('span', { class: 'text' }, ...item.parts.flat())));
    list.prepend(...items);
    while (list.children.length > FEED_MAX) list.lastElementChild.remove();
  }

  // ---------------------------------------------------------------- wiring

  document.addEventListener('DOMContentLoaded', () => {
    $('sign-in-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const key = $('key').value.trim();
      // Header values must be visible ASCII; anything else cannot be a key.
      if (!/^[\x21-\x7e]+$/.test(key)) {
        showSignIn('That is not an API key (dtk_…).');
        return;
      }
      $('key').value = '';
      signIn(key, false);
    });
    $('sign-out').addEventListener('click', () => signOut(null));
    $('close-window').addEventListener('click', closeWindow);
    $('confirm-all').addEventListener('click', () => {
      confirm([...document.querySelectorAll('#pending-list [data-confirm]')].map((b) => b.dataset.confirm));
    });
    $('pending-list').addEventListener('click', (event) => {
      const button = event.target.closest('button[data-confirm]');
      if (button) confirm([button.dataset.confirm]);
    });
    const stored = sessionStorage.getItem(KEY_STORAGE);
    if (stored) signIn(stored, true);
    else showSignIn(null);
  });
})();
