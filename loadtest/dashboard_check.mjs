// The dashboard in a real browser, the browser half of loadtest/dashboard.sh.
//
//   node loadtest/dashboard_check.mjs --base http://127.0.0.1:18093 \
//     --keys <data dir>/api-keys --screenshot docs/dashboard.png
//
// Drives headless Chromium over the Chrome DevTools Protocol, spoken on a pipe
// (`--remote-debugging-pipe`: fds 3 and 4, one JSON message per NUL-terminated
// line), so nothing beyond Node and Chromium is needed. It
//   1. sets demo caps, so the exposure bars show, and puts light load on the engine:
//      LOAD_RATE transfers a second (5 by default), each sent with its sender's key;
//   2. opens /dashboard and signs in the way a person does: types the operator key
//      into the form (the page keeps it in sessionStorage, never in the address);
//   3. closes windows — with the page's "Close window now" button, checking the API
//      moved on — and confirms one window's instructions with the page's buttons;
//   4. takes the screenshot under load;
//   5. pauses the load and, once the engine is quiet, reads every figure the page
//      shows (elements with data-field) and the same figures from the API with the
//      same key, before and after the page read: they must be equal;
//   6. signs out (the key leaves sessionStorage), signs in with a bank's key and
//      checks the page shows that bank only, no operator button and no error, and
//      that its figures match what the API answers that key; then the same with an
//      auditor's key (made through the API), which sees everything and no button.
// Any mismatch, page error or Content-Security-Policy violation: exit code 1.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => {
  if (a.startsWith('--')) pairs.push([a.slice(2), all[i + 1]]);
  return pairs;
}, []));
const BASE = args.base || 'http://127.0.0.1:18093';
const KEYS_FILE = args.keys || (() => { throw new Error('--keys <data dir>/api-keys is needed'); })();
const SCREENSHOT = args.screenshot || 'docs/dashboard.png';
const LOAD_RATE = Number(process.env.LOAD_RATE || 5);
const WIDTH = 1440;
const BANK_VIEW = process.env.BANK_VIEW || 'ICICI';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...parts) => console.log(...parts);
let failures = 0;
function check(ok, what) {
  log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures += 1;
  return ok;
}

// ------------------------------------------------------------------ keys and API

/** `operator - <key>` and `bank <CODE> <key>` lines of the engine's first-start file. */
const keys = { banks: {} };
for (const line of readFileSync(KEYS_FILE, 'utf8').split('\n')) {
  const [role, bank, key] = line.trim().split(/\s+/);
  if (role === 'operator') keys.operator = key;
  else if (role === 'bank') keys.banks[bank] = key;
}
if (!keys.operator) throw new Error(`no operator key in ${KEYS_FILE}`);

async function api(key, method, path, body) {
  const response = await fetch(BASE + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) { json = text; }
  return { status: response.status, body: json };
}

async function apiOk(key, method, path, body) {
  const answer = await api(key, method, path, body);
  if (answer.status >= 300) throw new Error(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

// ------------------------------------------------------------------ light load

const INDIAN = ['ICICI', 'HDFC', 'AXIS'];
const EMIRATI = ['ENBD', 'ADCB'];
const pick = (list) => list[Math.floor(Math.random() * list.length)];
/** A random amount as text, built from integers: `low`–`high` units with 2 decimals. */
const randomAmount = (low, high) => {
  const cents = low * 100 + Math.floor(Math.random() * (high - low) * 100);
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
};

const load = { running: false, paused: false, inFlight: 0, sent: 0, answered: {} };
function startLoad() {
  load.running = true;
  const tick = async () => {
    while (load.running) {
      if (!load.paused) {
        const fromIndia = Math.random() < 0.5;
        const sender = pick(fromIndia ? INDIAN : EMIRATI);
        const body = fromIndia
          ? { sender_bank: sender, receiver_bank: pick(EMIRATI), amount: randomAmount(1000, 1000000), from_currency: 'INR', to_currency: 'AED' }
          : { sender_bank: sender, receiver_bank: pick(INDIAN), amount: randomAmount(50, 45000), from_currency: 'AED', to_currency: 'INR' };
        body.reference = `dashboard check ${load.sent + 1}`;
        load.inFlight += 1;
        load.sent += 1;
        api(keys.banks[sender] || keys.operator, 'POST', '/api/v1/transfers', body)
          .then((a) => { load.answered[a.status] = (load.answered[a.status] || 0) + 1; })
          .catch(() => { load.answered.error = (load.answered.error || 0) + 1; })
          .finally(() => { load.inFlight -= 1; });
      }
      await sleep(1000 / LOAD_RATE);
    }
  };
  tick();
}
async function pauseLoad() {
  load.paused = true;
  while (load.inFlight > 0) await sleep(20);
}

// ------------------------------------------------------------------ Chromium over CDP

function chromiumPath() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const p of ['/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser']) {
    if (existsSync(p)) return p;
  }
  throw new Error('chromium not found (apt-get install -y chromium)');
}

class Browser {
  constructor() {
    this.profile = mkdtempSync(join(tmpdir(), 'deltran-chromium-'));
    const flags = [
      '--headless', '--remote-debugging-pipe', `--user-data-dir=${this.profile}`,
      '--no-first-run', '--no-default-browser-check', '--disable-gpu', '--hide-scrollbars',
      '--disable-extensions', '--disable-background-networking', '--mute-audio',
      `--window-size=${WIDTH},1000`, 'about:blank',
    ];
    // Chromium's sandbox refuses to run as root.
    if (process.getuid && process.getuid() === 0) flags.unshift('--no-sandbox');
    this.child = spawn(chromiumPath(), flags, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    this.stderr = '';
    this.child.stderr.on('data', (d) => { this.stderr += d; });
    this.out = this.child.stdio[3];
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = [];
    let buffer = '';
    this.child.stdio[4].on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      let end;
      while ((end = buffer.indexOf('\0')) >= 0) {
        const message = JSON.parse(buffer.slice(0, end));
        buffer = buffer.slice(end + 1);
        if (message.id && this.pending.has(message.id)) {
          const { resolve, reject, method } = this.pending.get(message.id);
          this.pending.delete(message.id);
          if (message.error) reject(new Error(`${method}: ${message.error.message}`));
          else resolve(message.result);
        } else if (message.method) {
          for (const listener of this.listeners) listener(message);
        }
      }
    });
  }

  send(method, params = {}, sessionId) {
    const id = this.nextId++;
    const message = { id, method, params };
    if (sessionId) message.sessionId = sessionId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.out.write(JSON.stringify(message) + '\0');
    });
  }

  async newPage() {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    return new Page(this, sessionId);
  }

  close() {
    this.child.kill('SIGTERM');
    try { rmSync(this.profile, { recursive: true, force: true }); } catch (_) { /* best effort */ }
  }
}

class Page {
  constructor(browser, sessionId) {
    this.browser = browser;
    this.sessionId = sessionId;
    this.problems = []; // exceptions and policy violations
    this.console = [];
    browser.listeners.push((m) => {
      if (m.sessionId !== sessionId) return;
      if (m.method === 'Runtime.exceptionThrown') {
        this.problems.push(`exception: ${m.params.exceptionDetails.exception?.description || m.params.exceptionDetails.text}`);
      } else if (m.method === 'Log.entryAdded') {
        const e = m.params.entry;
        this.console.push(`${e.level} ${e.source}: ${e.text}${e.url ? ' ' + e.url : ''}`);
        if (e.source === 'security' || /Content.Security.Policy/i.test(e.text)) this.problems.push(`policy: ${e.text}`);
        else if (e.source === 'javascript' && e.level === 'error') this.problems.push(`script: ${e.text}`);
      } else if (m.method === 'Runtime.consoleAPICalled' && m.params.type === 'error') {
        this.problems.push(`console.error: ${m.params.args.map((a) => a.value ?? a.description).join(' ')}`);
      }
    });
  }

  send(method, params) {
    return this.browser.send(method, params, this.sessionId);
  }

  async init() {
    await this.send('Page.enable');
    await this.send('Runtime.enable');
    await this.send('Log.enable');
    await this.send('Emulation.setDeviceMetricsOverride', { width: WIDTH, height: 1000, deviceScaleFactor: 1, mobile: false });
  }

  /** Evaluates `fn(arg)` in the page; its JSON value. */
  async run(fn, arg) {
    const expression = `(${fn.toString()})(${JSON.stringify(arg ?? null)})`;
    const answer = await this.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
    if (answer.exceptionDetails) throw new Error(`in page: ${answer.exceptionDetails.exception?.description || answer.exceptionDetails.text}`);
    return answer.result.value;
  }

  async waitFor(what, fn, arg, timeoutMs = 15000) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      // Before the page is there (a navigation under way) the probe may throw.
      const value = await this.run(fn, arg).catch(() => null);
      if (value) return value;
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await sleep(100);
    }
  }

  async screenshot(path) {
    const height = await this.run(() => Math.ceil(document.documentElement.scrollHeight));
    await this.send('Emulation.setDeviceMetricsOverride', { width: WIDTH, height, deviceScaleFactor: 1, mobile: false });
    await sleep(300);
    const { data } = await this.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true });
    writeFileSync(path, Buffer.from(data, 'base64'));
    await this.send('Emulation.setDeviceMetricsOverride', { width: WIDTH, height: 1000, deviceScaleFactor: 1, mobile: false });
    return height;
  }
}

// ------------------------------------------------------------------ in the page

/** Signs in through the form as a person would. */
function typeKey(key) {
  const input = document.getElementById('key');
  input.value = key;
  document.getElementById('sign-in-form').requestSubmit();
  return true;
}

/** Every figure the page shows, as text and as the API's text (data-value). */
function readPage() {
  const field = (root, name) => {
    const node = root.querySelector(`[data-field="${name}"]`);
    return node ? { value: node.dataset.value ?? null, text: node.textContent } : null;
  };
  const visible = (node) => node && !node.closest('[hidden]');
  const win = document.getElementById('open-window');
  return {
    refreshes: Number(document.body.dataset.refreshes || 0),
    signedIn: document.body.dataset.signedIn,
    role: document.body.dataset.role || null,
    bank: document.body.dataset.bank || null,
    roleText: document.getElementById('role').textContent,
    feedState: document.getElementById('feed-state').dataset.state,
    notice: visible(document.getElementById('notice')) ? document.getElementById('notice').textContent : null,
    operatorControls: [...document.querySelectorAll('.operator-only, button.confirm')].filter(visible).length,
    storedKey: sessionStorage.getItem('deltran.dashboard.key') !== null,
    address: location.href,
    window: {
      id: field(win, 'window-id'),
      count: field(win, 'transfer-count'),
      countdown: document.getElementById('countdown').textContent,
    },
    banks: [...document.querySelectorAll('#bank-list .bank')].map((b) => ({
      bank: b.dataset.bank,
      currencies: [...b.querySelectorAll('.currency')].map((c) => ({
        currency: c.dataset.currency,
        position: field(c, 'position'),
        exposure: field(c, 'exposure'),
        headroom: field(c, 'headroom'),
        cap: field(c, 'cap'),
        balance: field(c, 'settlement-balance'),
        share: Number(c.querySelector('.fill').dataset.share),
      })),
    })),
    netted: [...document.querySelectorAll('#netted-rows tr[data-window]')].map((r) => ({
      window: Number(r.dataset.window),
      currency: r.dataset.currency,
      count: field(r, 'transfer-count'),
      gross: field(r, 'gross'),
      net: field(r, 'net'),
      efficiency: field(r, 'efficiency'),
      liquidityUsed: field(r, 'liquidity-used'),
      liquidityEfficiency: field(r, 'liquidity-efficiency'),
      queueReleased: field(r, 'queue-released'),
      queueLeft: field(r, 'queue-left'),
    })),
    pending: [...document.querySelectorAll('#pending-list li[data-instruction]')].map((li) => li.dataset.instruction),
    feedItems: document.querySelectorAll('#feed-list li').length,
    feedTransfers: document.querySelectorAll('#feed-list li[data-type="transaction"]').length,
  };
}

// ------------------------------------------------------------------ the API's figures

async function readApi(key, role, bank) {
  const current = await apiOk(key, 'GET', '/api/v1/windows/current');
  const codes = role === 'bank' ? [bank] : (await apiOk(key, 'GET', '/api/v1/banks')).banks.map((b) => b.code);
  const positions = await Promise.all(codes.map((c) => apiOk(key, 'GET', `/api/v1/banks/${c}/positions`)));
  const list = await apiOk(key, 'GET', '/api/v1/windows?limit=8');
  const nettedIds = list.windows.filter((w) => ['netted', 'settled', 'settlement_failed'].includes(w.state)).slice(0, 5).map((w) => w.id);
  const netted = await Promise.all(nettedIds.map((id) => apiOk(key, 'GET', `/api/v1/windows/${id}`)));
  const pending = await apiOk(key, 'GET', '/api/v1/settlements?state=pending&limit=50');
  return {
    window: { id: current.id, count: current.transfer_count, closes_at: current.closes_at },
    positions,
    netted: netted.map((w) => ({ id: w.id, count: w.transfer_count, currencies: w.currencies, queue: w.queue })),
    pending: pending.settlements.map((i) => ({ id: i.id, payer: i.payer, payee: i.payee })),
  };
}

/** Waits until the page has finished two rounds of reads begun after now. */
async function freshPage(page) {
  const before = (await page.run(readPage)).refreshes;
  await page.waitFor('two fresh refreshes', (n) => Number(document.body.dataset.refreshes || 0) >= n, before + 2);
  return page.run(readPage);
}

/** The page against the API at one quiet moment: the API read before and after the
 *  page must agree, or it is read again. */
async function compare(page, key, role, bank, label) {
  for (let attempt = 1; attempt <= 5; attempt++) {
    const before = await readApi(key, role, bank);
    const shown = await freshPage(page);
    const after = await readApi(key, role, bank);
    if (JSON.stringify({ ...before, window: { ...before.window, closes_at: null } })
      !== JSON.stringify({ ...after, window: { ...after.window, closes_at: null } })) {
      log(`     (${label}: the API moved during the read, attempt ${attempt}; again)`);
      await sleep(1000);
      continue;
    }
    return matchFigures(shown, after, label);
  }
  return check(false, `${label}: the API never held still for a comparison`);
}

const grouped = (f) => f && f.text.replace(/,/g, '') === f.value;
function percentOf(ratio) {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(ratio);
  const fraction = (m[3] || '').padEnd(2, '0');
  const whole = (m[2] + fraction.slice(0, 2)).replace(/^0+(?=\d)/, '');
  const rest = fraction.slice(2).replace(/0+$/, '');
  return `${m[1]}${whole}${rest ? '.' + rest : ''} %`;
}

/** A liquidity efficiency as the page should show it: "1234.5" → "1,234.5 : 1"; an
 *  em dash for null (no liquidity used). */
function toOne(ratio) {
  if (ratio === null) return '—';
  const [whole, fraction] = ratio.split('.');
  let grouped = '';
  for (let i = 0; i < whole.length; i++) {
    if (i > 0 && (whole.length - i) % 3 === 0) grouped += ',';
    grouped += whole[i];
  }
  return `${grouped}${fraction === undefined ? '' : '.' + fraction} : 1`;
}

function matchFigures(shown, api, label) {
  const start = failures;
  log(`== ${label}: page against API`);
  check(shown.window.id?.value === String(api.window.id) && shown.window.count?.value === String(api.window.count) && grouped(shown.window.count),
    `open window: page #${shown.window.id?.value} with ${shown.window.count?.text} transfers; API #${api.window.id} with ${api.window.count}`);
  if (api.window.closes_at) {
    const left = (Date.parse(api.window.closes_at) - Date.now()) / 1000;
    const [m, s] = shown.window.countdown.split(':').map(Number);
    const pageLeft = m * 60 + s;
    check(Math.abs(pageLeft - left) <= 2, `countdown: page ${shown.window.countdown}, API cut-off in ${left.toFixed(1)} s`);
  }
  const pageBanks = shown.banks.map((b) => b.bank).sort();
  const apiBanks = api.positions.map((p) => p.bank).sort();
  check(JSON.stringify(pageBanks) === JSON.stringify(apiBanks), `banks shown: page ${pageBanks.join(' ')}; API ${apiBanks.join(' ')}`);
  for (const p of api.positions) {
    const card = shown.banks.find((b) => b.bank === p.bank);
    for (const c of p.positions) {
      const row = card?.currencies.find((x) => x.currency === c.currency);
      const fields = ['position', 'exposure', 'headroom', 'cap'];
      const apiField = { position: c.position, exposure: c.exposure, headroom: c.headroom, cap: c.net_debit_cap };
      const same = row && fields.every((f) => row[f]?.value === apiField[f] && grouped(row[f]));
      const share = Math.min(1, Math.max(0, Number(c.exposure) / Number(c.net_debit_cap)));
      const barOk = row && Math.abs(row.share - share) < 0.001;
      check(same && barOk, `${p.bank} ${c.currency}: page position ${row?.position?.text} exposure ${row?.exposure?.text} headroom ${row?.headroom?.text} cap ${row?.cap?.text} bar ${row ? (row.share * 100).toFixed(1) : '?'}%; API ${c.position} / ${c.exposure} / ${c.headroom} / ${c.net_debit_cap}`);
      // A prefunded bank's balance shows; a bank not prefunded shows none.
      const balanceOk = c.settlement_balance == null ? row && row.balance == null
        : row && row.balance?.value === c.settlement_balance && grouped(row.balance);
      check(balanceOk, `${p.bank} ${c.currency}: page balance ${row?.balance?.text ?? 'none'}; API ${c.settlement_balance ?? 'none'}`);
    }
  }
  const pageWindows = [...new Set(shown.netted.map((r) => r.window))];
  const apiWindows = api.netted.map((w) => w.id);
  check(JSON.stringify(pageWindows) === JSON.stringify(apiWindows), `netted windows: page ${pageWindows.join(' ')}; API ${apiWindows.join(' ')}`);
  for (const w of api.netted) {
    const rows = shown.netted.filter((r) => r.window === w.id);
    check(rows[0]?.count?.value === String(w.count) && grouped(rows[0]?.count), `window ${w.id} transfers: page ${rows[0]?.count?.text}; API ${w.count}`);
    for (const c of w.currencies) {
      const r = rows.find((x) => x.currency === c.currency);
      const same = r && r.gross?.value === c.gross && grouped(r.gross) && r.net?.value === c.net && grouped(r.net)
        && r.efficiency?.value === c.efficiency && r.efficiency.text === percentOf(c.efficiency);
      check(same, `window ${w.id} ${c.currency}: page gross ${r?.gross?.text} net ${r?.net?.text} efficiency ${r?.efficiency?.text}; API ${c.gross} / ${c.net} / ${c.efficiency}`);
      const liquidity = r && r.liquidityUsed?.value === c.liquidity_used && grouped(r.liquidityUsed)
        && r.liquidityEfficiency?.value === String(c.liquidity_efficiency)
        && r.liquidityEfficiency.text === toOne(c.liquidity_efficiency);
      check(liquidity, `window ${w.id} ${c.currency}: page liquidity used ${r?.liquidityUsed?.text} efficiency ${r?.liquidityEfficiency?.text}; API ${c.liquidity_used} / ${c.liquidity_efficiency}`);
      const q = (w.queue || []).find((x) => x.currency === c.currency);
      const [released, left] = [String(q ? q.released_count : 0), String(q ? q.left_queued_count : 0)];
      check(r && r.queueReleased?.value === released && r.queueLeft?.value === left,
        `window ${w.id} ${c.currency}: page queue released ${r?.queueReleased?.text} left ${r?.queueLeft?.text}; API ${released} / ${left}`);
    }
  }
  const pagePending = [...shown.pending].sort();
  const apiPending = api.pending.map((i) => i.id).sort();
  check(JSON.stringify(pagePending) === JSON.stringify(apiPending), `pending instructions: page ${pagePending.length}; API ${apiPending.length}`);
  check(!shown.notice, `no notice or error on the page${shown.notice ? ': ' + shown.notice : ''}`);
  return failures === start;
}

// ------------------------------------------------------------------ the run

async function main() {
  const op = keys.operator;
  // Demo caps, so that the exposure bars show against them under a short load.
  for (const b of INDIAN) await apiOk(op, 'PATCH', `/api/v1/banks/${b}`, { net_debit_caps: { INR: '20000000.00' } });
  for (const b of EMIRATI) await apiOk(op, 'PATCH', `/api/v1/banks/${b}`, { net_debit_caps: { AED: '1000000.00' } });
  // One prefunded bank, so that a settlement balance shows (above its cap: the cap binds).
  await apiOk(op, 'POST', `/api/v1/banks/${EMIRATI[0]}/balances/funds-in`, { currency: 'AED', amount: '5000000.00', reference: 'dashboard check' });
  startLoad();
  log(`== load: ${LOAD_RATE} transfers/s, each with its sender bank's key`);

  const browser = new Browser();
  try {
    const page = await browser.newPage();
    await page.init();
    await page.send('Page.navigate', { url: `${BASE}/dashboard` });
    await page.waitFor('the sign-in form', () => !document.getElementById('sign-in').hidden);
    check(true, 'the page loads without a key and asks for one');
    await page.run(typeKey, op);
    let shown = await page.waitFor('the board', () => document.body.dataset.refreshes && document.body.dataset.role);
    shown = await page.run(readPage);
    check(shown.role === 'operator' && shown.storedKey && !shown.address.includes('dtk_'),
      `signed in through the form as ${shown.roleText}; key in sessionStorage, not in the address`);
    await page.waitFor('the live feed', () => document.getElementById('feed-state').dataset.state === 'live');
    check(true, 'the WebSocket feed is live (/ws?token=)');

    // Windows: one closed through the API, one with the page's button.
    await sleep(6000);
    await apiOk(op, 'POST', '/api/v1/windows/current/close');
    await sleep(6000);
    const before = (await apiOk(op, 'GET', '/api/v1/windows/current')).id;
    await page.run(() => { document.getElementById('close-window').click(); return true; });
    const closedTo = await (async () => {
      for (let i = 0; i < 50; i++) {
        const id = (await apiOk(op, 'GET', '/api/v1/windows/current')).id;
        if (id > before) return id;
        await sleep(100);
      }
      return before;
    })();
    check(closedTo === before + 1, `"Close window now" closed window ${before}; the API's open window is now ${closedTo}`);
    await page.waitFor('the new window on the page', (id) => document.getElementById('window-id').dataset.value === String(id), closedTo);

    // The first window's instructions, confirmed with the page's buttons.
    const first = (await apiOk(op, 'GET', '/api/v1/windows?limit=20')).windows.map((w) => w.id).sort((a, b) => a - b)[0];
    await page.waitFor('pending instructions of the first window', (w) => document.querySelector(`#pending-list li[data-window="${w}"] button`), first);
    const clicked = await page.run((w) => {
      const buttons = [...document.querySelectorAll(`#pending-list li[data-window="${w}"] button[data-confirm]`)];
      // One click at a time: the page handles one action at once.
      let i = 0;
      return new Promise((resolve) => {
        const next = () => {
          if (i >= buttons.length) return resolve(buttons.length);
          const b = document.querySelector(`button[data-confirm="${buttons[i].dataset.confirm}"]`);
          if (b && !b.disabled) { b.click(); i += 1; }
          setTimeout(next, 300);
        };
        next();
      });
    }, first);
    let settled = null;
    for (let i = 0; i < 50 && settled !== 'settled'; i++) {
      settled = (await apiOk(op, 'GET', `/api/v1/windows/${first}`)).state;
      await sleep(100);
    }
    check(settled === 'settled', `"Confirm" on the ${clicked} instructions of window ${first}: the API says it is ${settled}`);

    await sleep(8000);
    const height = await page.screenshot(SCREENSHOT);
    const atShot = await page.run(readPage);
    log(`== screenshot under load: ${SCREENSHOT} (${WIDTH}×${height}); the feed shows ${atShot.feedItems} lines, ${atShot.feedTransfers} of them transfers`);
    check(atShot.feedTransfers > 0, 'transfers arrive on the page\'s feed');

    await pauseLoad();
    log(`== load paused after ${load.sent} transfers (answers by status: ${JSON.stringify(load.answered)})`);
    await sleep(1500);
    await compare(page, op, 'operator', null, 'operator');

    // Sign out; sign in as a bank.
    await page.run(() => { document.getElementById('sign-out').click(); return true; });
    await page.waitFor('the sign-in form again', () => !document.getElementById('sign-in').hidden);
    shown = await page.run(readPage);
    check(!shown.storedKey && shown.signedIn === 'false', 'sign out: the key left sessionStorage and the sign-in form is back');
    const bankKey = keys.banks[BANK_VIEW];
    await page.run(typeKey, bankKey);
    await page.waitFor('the bank board', () => document.body.dataset.role === 'bank' && document.body.dataset.refreshes);
    await page.waitFor('the live feed', () => document.getElementById('feed-state').dataset.state === 'live');
    shown = await page.run(readPage);
    check(shown.role === 'bank' && shown.bank === BANK_VIEW && shown.operatorControls === 0,
      `signed in as ${shown.roleText}: no operator control shown`);
    await compare(page, bankKey, 'bank', BANK_VIEW, `bank ${BANK_VIEW}`);
    const visibleBanks = (await page.run(readPage)).banks.map((b) => b.bank);
    check(visibleBanks.length === 1 && visibleBanks[0] === BANK_VIEW, `a bank's key shows its own bank only (${visibleBanks.join(' ')})`);

    // An auditor reads everything and changes nothing: every figure, no button.
    const auditor = (await apiOk(op, 'POST', '/api/v1/keys', { role: 'auditor', label: 'dashboard check' })).key;
    await page.run(() => { document.getElementById('sign-out').click(); return true; });
    await page.waitFor('the sign-in form again', () => !document.getElementById('sign-in').hidden);
    await page.run(typeKey, auditor);
    await page.waitFor('the auditor board', () => document.body.dataset.role === 'auditor' && document.body.dataset.refreshes);
    shown = await page.run(readPage);
    check(shown.operatorControls === 0, `signed in as ${shown.roleText}: no operator control shown`);
    await compare(page, auditor, 'auditor', null, 'auditor');

    const problems = page.problems;
    check(problems.length === 0, `no script error or Content-Security-Policy violation in the page${problems.length ? ':\n  ' + problems.join('\n  ') : ''}`);
    if (page.console.length) log(`   browser console (for the record):\n   ${page.console.join('\n   ')}`);
  } finally {
    load.running = false;
    browser.close();
  }
  log(failures ? `== ${failures} check(s) failed` : '== every check passed: the page shows what the API answers');
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.error(`FAIL ${e.stack || e}`);
  process.exit(1);
});
