// Shared by every scenario of the k6 suite: where the engine is, the keys, the
// reference banks, building and submitting a transfer (with the counters that
// loadtest/k6/reconcile.py checks against the store), the WebSocket feed, and paging.
//
// Environment (loadtest/k6/run.sh sets all of them; see loadtest/k6/README.md):
//   BASE_URL      the engine, e.g. http://127.0.0.1:8080
//   RUN_ID        prefix of every idempotency key this run sends (one run, one prefix)
//   OPERATOR_KEY  the operator's API key
//   BANK_KEYS     one key per bank: "ICICI=dtk_…,HDFC=dtk_…,…"
import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { WebSocket } from 'k6/experimental/websockets';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const WS_URL = `${BASE_URL.replace(/^http/, 'ws')}/ws`;
export const RUN_ID = __ENV.RUN_ID || '';
export const OPERATOR_KEY = __ENV.OPERATOR_KEY || '';

/// The five banks of the reference corridor and the currency each sends in.
export const HOME_CURRENCY = { ICICI: 'INR', HDFC: 'INR', AXIS: 'INR', ENBD: 'AED', ADCB: 'AED' };
export const BANKS = Object.keys(HOME_CURRENCY);

const BANK_KEYS = {};
for (const entry of (__ENV.BANK_KEYS || '').split(',')) {
  const at = entry.indexOf('=');
  if (at > 0) BANK_KEYS[entry.slice(0, at).trim()] = entry.slice(at + 1).trim();
}

/// The key of bank `code`; a transfer is always sent with its sender's own key.
export function bankKey(code) {
  const key = BANK_KEYS[code];
  if (!key) throw new Error(`no key for bank ${code} in BANK_KEYS`);
  return key;
}

/// Call from setup(): stops the run at once when the environment is incomplete.
export function requireEnvironment() {
  const missing = [];
  if (!RUN_ID) missing.push('RUN_ID');
  if (!OPERATOR_KEY) missing.push('OPERATOR_KEY');
  for (const bank of BANKS) if (!BANK_KEYS[bank]) missing.push(`BANK_KEYS entry for ${bank}`);
  if (missing.length) {
    throw new Error(`missing ${missing.join(', ')} (loadtest/k6/run.sh sets them; see loadtest/k6/README.md)`);
  }
}

export function authHeaders(key, extra = {}) {
  const headers = { 'Content-Type': 'application/json', ...extra };
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

/// One API call. `name` groups URLs that carry ids (`/api/v1/transfers/{id}`) into
/// one metric series; `expect` lists the statuses that are not failures.
export function api(method, path, { key = OPERATOR_KEY, body = null, name, expect, tags = {}, headers = {} } = {}) {
  const params = {
    headers: authHeaders(key, headers),
    tags: { name: name || path.split('?')[0], ...tags },
    responseType: 'text',
  };
  if (expect) params.responseCallback = http.expectedStatuses(...expect);
  const payload = body === null ? null : typeof body === 'string' ? body : JSON.stringify(body);
  return http.request(method, `${BASE_URL}${path}`, payload, params);
}

/// The JSON body of an answer, or null.
export function json(res) {
  try {
    return JSON.parse(res.body);
  } catch (_) {
    return null;
  }
}

// ---- transfers ------------------------------------------------------------------

/// Every ordered pair of reference banks with a corridor between their currencies.
export const PAIRS = BANKS.flatMap((sender) =>
  BANKS.filter((receiver) => HOME_CURRENCY[receiver] !== HOME_CURRENCY[sender]).map((receiver) => ({
    sender,
    receiver,
    from: HOME_CURRENCY[sender],
    to: HOME_CURRENCY[receiver],
  })),
);

export function randomPair() {
  return PAIRS[Math.floor(Math.random() * PAIRS.length)];
}

/// A uniform amount in [min, max] with two decimals, as a decimal string.
export function randomAmount(min = 1000, max = 1000000) {
  const cents = Math.round(min * 100) + Math.floor(Math.random() * (Math.round((max - min) * 100) + 1));
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

// What became of each submission: the reconciliation compares the first two with the
// store. `accepted` counts 202 answers that are not replays (a transfer stored once,
// accepted); `rejected` counts 422 answers carrying a `transaction_id` (a rejection,
// also stored); `refused` counts 503 `overloaded` (refused before entering the engine:
// never stored); `unsure` counts answers that do not say whether the transfer was
// stored (any other 5xx, or no answer at all); `replayed` counts answers with
// `Idempotent-Replayed: true`; `invalid` counts every other answer (input errors,
// 401/403/409/413/429: never stored).
export const submissions = {
  accepted: new Counter('transfers_accepted'),
  rejected: new Counter('transfers_rejected'),
  refused: new Counter('transfers_refused'),
  unsure: new Counter('transfers_unsure'),
  replayed: new Counter('transfers_replayed'),
  invalid: new Counter('transfers_invalid'),
};

let sequence = 0;
let unsureLogged = 0; // per VU

/// An idempotency key no other submission of this run uses.
export function nextIdempotencyKey() {
  sequence += 1;
  return `${RUN_ID}-${exec.vu.idInTest}-${sequence}`;
}

/// The outcome of a submission's answer: accepted, rejected, refused, unsure,
/// replayed or invalid (see `submissions`).
export function outcomeOf(res) {
  if (res.headers['Idempotent-Replayed'] === 'true') return 'replayed';
  if (res.status === 202) return 'accepted';
  if (res.status === 0 || (res.status >= 500 && res.status !== 503)) return 'unsure';
  const body = json(res) || {};
  if (res.status === 422 && body.transaction_id) return 'rejected';
  if (res.status === 503) return body.code === 'overloaded' ? 'refused' : 'unsure';
  return 'invalid';
}

/// The outcomes of a batch's answer (`POST /api/v1/transfers/batch`), one per transfer,
/// as `outcomeOf` tells a single submission's; a batch refused whole: none.
export function batchOutcomes(res) {
  const body = res.status === 200 ? json(res) : null;
  if (!body || !Array.isArray(body.results)) return [];
  return body.results.map((r) => {
    if (r.replayed) return 'replayed';
    if (r.status === 202) return 'accepted';
    if (r.status === 422 && r.problem && r.problem.transaction_id) return 'rejected';
    if (r.status === 503) return r.problem && r.problem.code === 'overloaded' ? 'refused' : 'unsure';
    return 'invalid';
  });
}

/// Submits one transfer with its sender bank's key and counts its outcome.
/// `pair` defaults to a random pair of reference banks, `amount` to a random amount
/// of 1,000 to 1,000,000; `path` may be the compatibility route `/api/v1/transfer`.
/// Answers { res, outcome, body, idempotencyKey }.
export function submitTransfer({ pair = randomPair(), amount = randomAmount(), key, path = '/api/v1/transfers', tags = {}, expect = [202] } = {}) {
  const idempotencyKey = nextIdempotencyKey();
  const body = {
    sender_bank: pair.sender,
    receiver_bank: pair.receiver,
    amount,
    from_currency: pair.from,
    to_currency: pair.to,
    reference: `k6 ${RUN_ID}`,
  };
  // The key in the Idempotency-Key header: k6's HTTP client (Go's) then knows the POST
  // may be resent, and does resend it when a kept-alive connection turns out to have
  // been closed by the server just as the request went out (otherwise an `EOF` with no
  // answer: counted unsure).
  const res = api('POST', path, {
    key: key || bankKey(pair.sender), body, expect, headers: { 'Idempotency-Key': idempotencyKey }, tags: { kind: 'submit', ...tags },
  });
  const outcome = outcomeOf(res);
  submissions[outcome].add(1, tags);
  if (outcome === 'unsure' && unsureLogged++ < 5) {
    console.warn(`submission ${idempotencyKey}: status ${res.status} ${res.error || ''} ${String(res.body || '').slice(0, 200)}`);
  }
  return { res, outcome, body: outcome === 'accepted' ? json(res) : null, idempotencyKey, request: body };
}

/// Checks that an answer to a submission is an acceptance, or (when `refusalIsFine`)
/// a clean refusal: `503 overloaded` with `Retry-After`.
export function checkSubmission({ res, outcome }, refusalIsFine = false) {
  if (!refusalIsFine) return check(res, { 'submission: 202 accepted': () => outcome === 'accepted' });
  return check(res, {
    'submission: 202, or 503 overloaded with Retry-After': () =>
      outcome === 'accepted' || (outcome === 'refused' && Boolean(res.headers['Retry-After'])),
  });
}

// ---- listing ----------------------------------------------------------------------

/// A transfer-list cursor just before the given time (ms since the epoch): transfer
/// ids are UUIDv7, which sort by creation time, and the list is in id order, so a
/// page that starts here skips every transfer made before that instant.
export function cursorAt(ms) {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-000000000000`;
}

/// Every transfer the key sees from `query` on, page by page (`cursor` starts it).
export function listTransfers({ key = OPERATOR_KEY, query = '', cursor = null } = {}) {
  const transfers = [];
  for (;;) {
    const params = [query, 'limit=1000', cursor ? `cursor=${cursor}` : ''].filter(Boolean).join('&');
    const res = api('GET', `/api/v1/transfers?${params}`, { key, name: '/api/v1/transfers (paging)' });
    const body = json(res);
    if (res.status !== 200 || !body) throw new Error(`listing transfers: ${res.status} ${res.body}`);
    transfers.push(...body.transactions);
    if (!body.next_cursor) return transfers;
    cursor = body.next_cursor;
  }
}

/// The engine's clock (ms since the epoch, whole seconds), from its Date header.
export function engineClock() {
  const res = api('GET', '/health', { key: null });
  return Date.parse(res.headers.Date);
}

// ---- the WebSocket feed --------------------------------------------------------------

/// Opens `/ws` with `key` (in the Authorization header, or as `?token=` when
/// `tokenInQuery`), subscribes to `channels` (for `bank` only, when given) and calls
/// `onEvent(message)` for every server message after the subscription's
/// acknowledgement, `onSubscribed(ack)` once. Answers the socket.
export function openFeed({ key, channels, bank = null, tokenInQuery = false, onSubscribed = () => {}, onEvent = () => {}, onClose = () => {} }) {
  const url = tokenInQuery ? `${WS_URL}?token=${encodeURIComponent(key)}` : WS_URL;
  const params = tokenInQuery ? {} : { headers: { Authorization: `Bearer ${key}` } };
  const ws = new WebSocket(url, null, params);
  let subscribed = false;
  ws.onopen = () => {
    const message = { type: 'subscribe', channels };
    if (bank) message.bank = bank;
    ws.send(JSON.stringify(message));
  };
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (!subscribed && message.type === 'subscribed') {
      subscribed = true;
      onSubscribed(message);
      return;
    }
    onEvent(message);
  };
  ws.onclose = onClose;
  ws.onerror = (e) => console.error(`WebSocket error: ${e.error}`);
  return ws;
}

// ---- timing -------------------------------------------------------------------------

/// Seconds in a k6 duration such as "90s", "5m" or "1m30s".
export function seconds(duration) {
  const units = { h: 3600, m: 60, s: 1, ms: 0.001 };
  let total = 0;
  for (const [, value, unit] of String(duration).matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) total += parseFloat(value) * units[unit];
  if (!total) throw new Error(`not a duration: ${duration}`);
  return total;
}

export function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/// Polls `probe` every `everyMs` until it answers something truthy or `timeoutMs`
/// passes; answers the last answer (falsy on a timeout).
export async function waitFor(probe, timeoutMs = 10000, everyMs = 100) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const answer = probe();
    if (answer || Date.now() >= until) return answer;
    await delay(everyMs);
  }
}
