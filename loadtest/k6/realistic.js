// Realistic: 100 transfers a second for 5 minutes, spread over the five reference
// banks (each sent with its sender's own key), amounts uniform from 1,000 to
// 1,000,000; one transfer in ten is read back by its sender, as a bank's back office
// would. Fails when p95 of any request reaches 500 ms or 1 % of requests fail.
//   RATE (100), DURATION (5m): shorten DURATION for a trial run only.
import { check } from 'k6';
import { api, bankKey, checkSubmission, requireEnvironment, submitTransfer } from './lib.js';

const RATE = parseInt(__ENV.RATE || '100', 10);

export const options = {
  scenarios: {
    transfers: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: __ENV.DURATION || '5m',
      preAllocatedVUs: Math.max(20, Math.ceil(RATE / 2)),
      maxVUs: Math.max(200, RATE * 4),
    },
  },
  thresholds: {
    http_req_duration: ['p(95)<500'],
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    transfers_unsure: ['count==0'],
    dropped_iterations: [`count<${Math.ceil(RATE)}`],
  },
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  requireEnvironment();
}

export default function () {
  const submitted = submitTransfer();
  checkSubmission(submitted);
  if (submitted.outcome === 'accepted' && Math.random() < 0.1) {
    const { transaction_id: id } = submitted.body;
    const res = api('GET', `/api/v1/transfers/${id}`, {
      key: bankKey(submitted.request.sender_bank),
      name: '/api/v1/transfers/{id}',
    });
    check(res, { 'read back: 200, same transfer': (r) => r.status === 200 && r.json('transaction_id') === id });
  }
}
