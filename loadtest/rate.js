// k6: a constant arrival rate of single-transfer submissions, to measure latency at a
// fixed load (open model: arrivals do not wait for answers).
//   DELTRAN_KEY=dtk_… RATE=10000 DURATION=20s BASE=http://127.0.0.1:8080 k6 run loadtest/rate.js
// DELTRAN_KEY is an API key (an operator's: it may submit as every bank), sent as
// `Authorization: Bearer …`.
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';

const RATE = parseInt(__ENV.RATE || '1000');
const RUN_ID = __ENV.RUN_ID || `k6${Date.now()}`;
const BASE = __ENV.BASE || 'http://127.0.0.1:8080';
const KEY = __ENV.DELTRAN_KEY || '';
const P99_MS_MAX = parseFloat(__ENV.P99_MS_MAX || '25');

export const options = {
  discardResponseBodies: true,
  scenarios: {
    submit: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: __ENV.DURATION || '20s',
      preAllocatedVUs: parseInt(__ENV.VUS || '400'),
      maxVUs: parseInt(__ENV.VUS_MAX || '2000'),
    },
  },
  thresholds: {
    http_req_duration: [`p(99)<${P99_MS_MAX}`],
    checks: ['rate>0.999'],
  },
  summaryTrendStats: ['avg', 'p(50)', 'p(90)', 'p(99)', 'max'],
};

const PAIRS = [
  ['ICICI', 'ENBD', 'INR', 'AED'],
  ['HDFC', 'ADCB', 'INR', 'AED'],
  ['AXIS', 'ENBD', 'INR', 'AED'],
  ['ENBD', 'ICICI', 'AED', 'INR'],
  ['ADCB', 'HDFC', 'AED', 'INR'],
];

export function setup() {
  if (!KEY) throw new Error('set DELTRAN_KEY to an API key (the operator key in <data-dir>/api-keys)');
}

export default function () {
  const n = exec.scenario.iterationInTest;
  const [sender, receiver, from, to] = PAIRS[n % PAIRS.length];
  const body = JSON.stringify({
    sender_bank: sender,
    receiver_bank: receiver,
    amount: `${100 + (n % 900)}.${String(n % 100).padStart(2, '0')}`,
    from_currency: from,
    to_currency: to,
    idempotency_key: `${RUN_ID}-${n}`,
  });
  const res = http.post(`${BASE}/api/v1/transfers`, body, {
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}` },
  });
  check(res, { 'accepted (202)': (r) => r.status === 202 });
}
