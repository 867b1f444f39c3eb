// Stress to the breaking point: the arrival rate of transfers climbs in steps — START
// a second, then STEP more every STEP_DURATION, up to MAX — and holds each step. The
// engine must answer every submission with an acceptance or a clean refusal (`503
// overloaded` with `Retry-After`: refused before it entered the engine, nothing
// stored), never with another error or no answer. Each request is tagged with its
// step's target rate; run.sh prints the table (reconcile.py steps): what was sent and
// accepted per step, p95 and p99, and the step where 503s started, or that none came
// (and whether k6 itself could not send the target rate: dropped iterations).
//   START (1000), STEP (1000), MAX (10000), STEP_DURATION (10s), VUS (2000)
import exec from 'k6/execution';
import { Gauge } from 'k6/metrics';
import { checkSubmission, requireEnvironment, seconds, submitTransfer } from './lib.js';

const START = parseInt(__ENV.START || '1000', 10);
const STEP = parseInt(__ENV.STEP || '1000', 10);
const MAX = parseInt(__ENV.MAX || '10000', 10);
const STEP_S = seconds(__ENV.STEP_DURATION || '10s');
const RAMP_S = Math.min(2, STEP_S / 2); // from one step's rate to the next

const TARGETS = [];
for (let rate = START; rate <= MAX; rate += STEP) TARGETS.push(rate);

// Every step's figures appear in the summary only if a threshold names them.
const shown = {};
for (const rate of TARGETS) {
  shown[`http_reqs{step:${rate}}`] = ['count>=0'];
  shown[`transfers_accepted{step:${rate}}`] = ['count>=0'];
  shown[`transfers_refused{step:${rate}}`] = ['count>=0'];
  shown[`http_req_duration{step:${rate}}`] = ['p(95)>=0'];
}

export const options = {
  scenarios: {
    stress: {
      executor: 'ramping-arrival-rate',
      startRate: 0,
      timeUnit: '1s',
      stages: TARGETS.flatMap((target) => [
        { target, duration: `${RAMP_S}s` },
        { target, duration: `${STEP_S - RAMP_S}s` },
      ]),
      preAllocatedVUs: parseInt(__ENV.VUS || '2000', 10),
      maxVUs: parseInt(__ENV.VUS || '2000', 10),
    },
  },
  thresholds: {
    checks: ['rate==1'],
    transfers_unsure: ['count==0'],
    ...shown,
  },
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
};

const stepSeconds = new Gauge('stress_step_seconds');

export function setup() {
  requireEnvironment();
  stepSeconds.add(STEP_S);
}

export default function () {
  const elapsedS = (Date.now() - exec.scenario.startTime) / 1000;
  const step = TARGETS[Math.min(TARGETS.length - 1, Math.floor(elapsedS / STEP_S))];
  checkSubmission(submitTransfer({ tags: { step: String(step) } }), true);
}
