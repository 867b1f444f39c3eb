// WebSocket fan-out: SUBSCRIBERS_PER_BANK subscribers for each of the five reference
// banks listen to the `transactions` channel while a second group of VUs submits
// transfers at RATE a second for DURATION (each with its sender's key). Every
// subscriber asserts that every transfer it hears involves its own bank, and at the
// end that it heard every transfer of this run that involves its bank (listed through
// the API with the same key). Subscribers take turns: a bank key in the Authorization
// header, a bank key as `?token=`, the operator key subscribing with `bank`.
// Fails on one foreign event, one missed transfer, a subscriber that heard nothing or
// was cut off as lagging.
//   SUBSCRIBERS_PER_BANK (4), RATE (200), DURATION (60s)
import { check } from 'k6';
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import {
  BANKS, OPERATOR_KEY, RUN_ID, bankKey, checkSubmission, cursorAt, engineClock, listTransfers, openFeed,
  requireEnvironment, seconds, submitTransfer, waitFor,
} from './lib.js';

const PER_BANK = parseInt(__ENV.SUBSCRIBERS_PER_BANK || '4', 10);
const RATE = parseInt(__ENV.RATE || '200', 10);
const DURATION = __ENV.DURATION || '60s';
const TRAFFIC_START_S = 3; // subscribers are in place by then
const GRACE_S = 5; // after the last submission, for the last events to arrive

export const options = {
  scenarios: {
    subscribers: {
      executor: 'per-vu-iterations',
      exec: 'subscriber',
      vus: PER_BANK * BANKS.length,
      iterations: 1,
      maxDuration: `${TRAFFIC_START_S + seconds(DURATION) + GRACE_S + 60}s`,
    },
    traffic: {
      executor: 'constant-arrival-rate',
      exec: 'traffic',
      startTime: `${TRAFFIC_START_S}s`,
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: Math.max(10, Math.ceil(RATE / 10)),
      maxVUs: Math.max(100, RATE),
    },
  },
  thresholds: {
    ws_foreign_events: ['count==0'],
    ws_missed_transfers: ['count==0'],
    ws_transfer_events: ['count>0'],
    ws_silent_subscribers: ['count==0'],
    ws_lagged: ['count==0'],
    checks: ['rate==1'],
    http_req_failed: ['rate<0.01'],
    transfers_unsure: ['count==0'],
  },
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
};

const transferEvents = new Counter('ws_transfer_events');
const foreignEvents = new Counter('ws_foreign_events');
const missedTransfers = new Counter('ws_missed_transfers');
const silentSubscribers = new Counter('ws_silent_subscribers');
const lagged = new Counter('ws_lagged');
// From the transfer's creation (its `created_at`) to its event reaching the
// subscriber: meaningful when k6 and the engine share a clock (one machine).
const delivery = new Trend('ws_delivery_ms', true);

export function setup() {
  requireEnvironment();
  return { startedAt: Date.now(), engineStartedAt: engineClock() };
}

export function traffic() {
  checkSubmission(submitTransfer());
}

export async function subscriber({ startedAt, engineStartedAt }) {
  const n = exec.scenario.iterationInTest;
  const bank = BANKS[n % BANKS.length];
  const variant = ['header', 'token', 'operator'][Math.floor(n / BANKS.length) % 3];
  const key = variant === 'operator' ? OPERATOR_KEY : bankKey(bank);
  const tags = { bank, variant };
  const heard = new Set();
  let subscribed = null;
  const feed = openFeed({
    key,
    channels: ['transactions'],
    bank: variant === 'operator' ? bank : null,
    tokenInQuery: variant === 'token',
    onSubscribed: (m) => { subscribed = m; },
    onEvent: (m) => {
      if (m.type === 'lagged') lagged.add(1, tags);
      if (m.type !== 'transaction') return;
      const t = m.data;
      transferEvents.add(1, tags);
      if (t.sender_bank !== bank && t.receiver_bank !== bank) {
        foreignEvents.add(1, tags);
        console.error(`${variant} subscriber of ${bank} heard ${t.transaction_id} (${t.sender_bank} → ${t.receiver_bank})`);
      }
      if ((t.idempotency_key || '').startsWith(`${RUN_ID}-`)) heard.add(t.transaction_id);
      delivery.add(Date.now() - Date.parse(t.created_at), tags);
    },
  });
  await waitFor(() => subscribed, 5000, 20);
  check(subscribed, { 'subscribed, to its own bank': (m) => m !== null && m.data.bank === bank });

  // Listen until the traffic has stopped and its last events have arrived.
  const until = startedAt + (TRAFFIC_START_S + seconds(DURATION) + GRACE_S) * 1000;
  await waitFor(() => Date.now() >= until, until - Date.now() + 1000, 500);
  feed.close();

  if (heard.size === 0) silentSubscribers.add(1, tags);
  // Every transfer of this run that involves the bank, as the same key lists it.
  const stored = listTransfers({ key, query: `bank=${bank}`, cursor: cursorAt(engineStartedAt - 5000) })
    .filter((t) => (t.idempotency_key || '').startsWith(`${RUN_ID}-`));
  const missed = stored.filter((t) => !heard.has(t.transaction_id));
  missedTransfers.add(missed.length, tags);
  check(missed, { 'heard every transfer of its bank': (m) => m.length === 0 });
  if (missed.length) console.error(`${variant} subscriber of ${bank} missed ${missed.length} of ${stored.length} transfers`);
}
