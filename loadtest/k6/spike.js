// Spike: the arrival rate of transfers climbs from 0 to PEAK (5,000) a second in 10 s
// and falls back to 0 in 10 s; then 100 a second for 20 s show whether the engine has
// recovered. Every answer must be an acceptance or a clean refusal (`503 overloaded`
// with `Retry-After`, nothing stored), nothing may be lost or half-answered, and after
// the spike requests must succeed again (failures < 1 %, p95 < 500 ms).
//   PEAK (5000), RISE (10s), FALL (10s), VUS (2000)
import { checkSubmission, requireEnvironment, seconds, submitTransfer } from './lib.js';

const PEAK = parseInt(__ENV.PEAK || '5000', 10);
const RISE = __ENV.RISE || '10s';
const FALL = __ENV.FALL || '10s';

export const options = {
  scenarios: {
    spike: {
      executor: 'ramping-arrival-rate',
      startRate: 0,
      timeUnit: '1s',
      stages: [
        { target: PEAK, duration: RISE },
        { target: 0, duration: FALL },
      ],
      // Made before the start: a VU made during the spike costs the time it is needed.
      preAllocatedVUs: parseInt(__ENV.VUS || '2000', 10),
      maxVUs: parseInt(__ENV.VUS || '2000', 10),
    },
    after: {
      executor: 'constant-arrival-rate',
      startTime: `${seconds(RISE) + seconds(FALL)}s`,
      rate: 100,
      timeUnit: '1s',
      duration: '20s',
      preAllocatedVUs: 20,
      maxVUs: 200,
    },
  },
  thresholds: {
    checks: ['rate==1'],
    transfers_unsure: ['count==0'],
    transfers_accepted: ['count>0'],
    'http_req_duration{scenario:spike}': ['p(95)>=0'], // shown in the summary
    'transfers_refused{scenario:spike}': ['count>=0'], // shown in the summary
    'http_req_failed{scenario:after}': ['rate<0.01'],
    'http_req_duration{scenario:after}': ['p(95)<500'],
  },
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  requireEnvironment();
}

export default function () {
  checkSubmission(submitTransfer(), true);
}
