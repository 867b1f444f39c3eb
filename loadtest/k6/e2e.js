// End to end, one transfer at a time through its whole life: a bank (its own key)
// subscribes to its feed, submits, reads the transfer back (`accepted`), receives it on
// the WebSocket; the operator closes the window; the bank sees the transfer `netted`
// and the window netted on its feed; the operator confirms every instruction of the
// window; the bank sees the transfer `settled` and the window settled on its feed.
// Every iteration takes the next pair of reference banks. Fails on any failed step.
//   ITERATIONS (5): transfers taken through, one after the other.
// It closes windows and confirms instructions: run it against a test engine.
import { check } from 'k6';
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import {
  OPERATOR_KEY, PAIRS, api, bankKey, checkSubmission, json, openFeed, randomAmount, requireEnvironment,
  submitTransfer, waitFor,
} from './lib.js';

export const options = {
  scenarios: {
    e2e: { executor: 'per-vu-iterations', vus: 1, iterations: parseInt(__ENV.ITERATIONS || '5', 10), maxDuration: '5m' },
  },
  thresholds: {
    checks: ['rate==1'],
    e2e_failed: ['count==0'],
    e2e_completed: ['count>0'],
    e2e_duration: ['p(95)<5000'],
    transfers_unsure: ['count==0'],
  },
  summaryTrendStats: ['avg', 'min', 'p(50)', 'p(95)', 'max'],
};

const failed = new Counter('e2e_failed');
const completed = new Counter('e2e_completed');
const duration = new Trend('e2e_duration', true);

export function setup() {
  requireEnvironment();
}

/// The transfer as its sender reads it, once its status is `status` (10 s at most).
async function transferWhen(id, key, status) {
  return waitFor(() => {
    const t = json(api('GET', `/api/v1/transfers/${id}`, { key, name: '/api/v1/transfers/{id}' }));
    return t && t.status === status ? t : null;
  });
}

export default async function () {
  const pair = PAIRS[exec.scenario.iterationInTest % PAIRS.length];
  const key = bankKey(pair.sender);
  const events = [];
  let subscribed = null;
  const feed = openFeed({
    key,
    channels: ['transactions', 'windows', 'settlements'],
    onSubscribed: (m) => { subscribed = m; },
    onEvent: (m) => events.push(m),
  });
  const heard = (type, match) => waitFor(() => events.find((m) => m.type === type && match(m.data)), 10000, 20);
  // Each step is a check; the first that fails ends the iteration.
  const step = (name, value, ok) => check(value, { [`${name}`]: ok });
  const started = Date.now();
  const done = await (async () => {
    if (!step('1 feed: subscribed to the sender bank', await waitFor(() => subscribed, 5000, 20), (m) => m && m.data.bank === pair.sender)) return false;

    const submitted = submitTransfer({ pair, amount: randomAmount() });
    if (!checkSubmission(submitted)) return false;
    const { transaction_id: id, window_id: windowOfSubmit } = submitted.body;

    const read = json(api('GET', `/api/v1/transfers/${id}`, { key, name: '/api/v1/transfers/{id}' }));
    if (!step('2 read back: accepted, same amount', read, (t) => t && t.status === 'accepted' && t.amount === submitted.body.amount)) return false;

    const event = await heard('transaction', (t) => t.transaction_id === id);
    if (!step('3 feed: the transfer arrives, as read', event, (m) => m && m.channel === 'transactions' && m.data.amount === read.amount && m.data.window_id === windowOfSubmit)) return false;

    const close = api('POST', '/api/v1/windows/current/close', { key: OPERATOR_KEY, expect: [202] });
    if (!step('4 operator closes the window: 202', close, (r) => r.status === 202)) return false;

    const netted = await transferWhen(id, key, 'netted');
    if (!step('5 read: netted', netted, (t) => t !== null)) return false;
    const windowId = netted.window_id;
    const windowNetted = await heard('window_netted', (w) => w.id === windowId);
    if (!step('6 feed: its window netted, with the bank\'s positions only', windowNetted, (m) => m && m.data.positions.every((p) => p.bank === pair.sender))) return false;

    const instructions = json(api('GET', `/api/v1/settlements?window_id=${windowId}&limit=1000`, { key: OPERATOR_KEY, name: '/api/v1/settlements' }));
    if (!step('7 the window has instructions', instructions, (b) => b && b.settlements.length > 0)) return false;
    for (const instruction of instructions.settlements) {
      const res = api('POST', `/api/v1/settlements/${instruction.id}/confirm`, { key: OPERATOR_KEY, name: '/api/v1/settlements/{id}/confirm', expect: [200] });
      if (!step('8 operator confirms each instruction: 200 confirmed', res, (r) => r.status === 200 && r.json('state') === 'confirmed')) return false;
    }

    const settled = await transferWhen(id, key, 'settled');
    if (!step('9 read: settled', settled, (t) => t !== null)) return false;
    const windowSettled = await heard('window_settled', (w) => w.id === windowId);
    return step('10 feed: its window settled', windowSettled, (m) => m && m.data.state === 'settled');
  })();
  feed.close();
  if (done) {
    completed.add(1);
    duration.add(Date.now() - started);
  } else {
    failed.add(1);
  }
}
