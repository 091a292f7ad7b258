import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AutoscalingSpec } from '../../../core/config/api-spec.js';
import { INITIAL_SCALING_POLICY_STATE, type ScalingPolicyState } from '../../../core/ports/scaling-policy.js';
import { CortexScalingPolicy } from '../../../plugins/scaling-cortex/cortex-scaling-policy.js';
import { autoscalingSpec } from '../../harness/autoscaling-spec-fixture.js';

const NOW = 3_600_000;
const policy = new CortexScalingPolicy();

/** State with the API started `uptimeMs` ago and recommendations `[secondsAgo, rec]`. */
function state(uptimeMs: number, recs: readonly (readonly [number, number])[] = []): ScalingPolicyState {
  return { v: 1, startMs: NOW - uptimeMs, history: recs.map(([ago, r]) => [NOW - ago * 1000, r] as const), panic: null };
}

interface Case {
  readonly name: string;
  readonly spec?: Partial<AutoscalingSpec>;
  readonly cur: number;
  readonly avg: number;
  readonly state: ScalingPolicyState;
  readonly want: { readonly desired: number; readonly recommendation: number; readonly reason: RegExp };
}

const longUp = 3_600_000;
const cases: Case[] = [
  {
    name: 'reference §2.3 worked example: 9.3 at target 1 from 4 ⇒ rec 6, held at 4 by the last minute of 4s',
    cur: 4,
    avg: 9.3,
    state: state(longUp, [[50, 4], [40, 4], [30, 4], [20, 4], [10, 4]]),
    want: { desired: 4, recommendation: 6, reason: /^capped by max_upscale_factor 1\.5 \(ceiling 6\); held by upscale stabilization \(lowest rec 4 in last 60s\)$/ },
  },
  {
    name: 'worked example after a full minute of high recommendations ⇒ 6',
    cur: 4,
    avg: 9.3,
    state: state(longUp, [[60, 4], [50, 6], [40, 6], [30, 6], [20, 6], [10, 6]]),
    want: { desired: 6, recommendation: 6, reason: /^scale up 4 → 6; capped by max_upscale_factor/ },
  },
  {
    name: 'upscale limited to the lowest recommendation of the period when it is above current',
    cur: 4,
    avg: 9.3,
    state: state(longUp, [[50, 5], [10, 6]]),
    want: { desired: 5, recommendation: 6, reason: /limited by upscale stabilization \(lowest rec 5 in last 60s\)/ },
  },
  {
    name: 'within upscale tolerance: raw 4.1 < 4 × 1.05 ⇒ hold 4',
    cur: 4,
    avg: 4.1,
    state: state(longUp),
    want: { desired: 4, recommendation: 4, reason: /^within upscale tolerance \(raw 4\.1 < 4 × 1\.05\)$/ },
  },
  {
    name: 'just outside upscale tolerance: raw 4.2 is not < 4.2 ⇒ rec 5',
    cur: 4,
    avg: 4.2,
    state: state(longUp, [[30, 5]]),
    want: { desired: 5, recommendation: 5, reason: /^scale up 4 → 5$/ },
  },
  {
    name: 'within downscale tolerance: raw 38.5 > 40 × 0.95 ⇒ hold 40 (ceil would say 39)',
    cur: 40,
    avg: 38.5,
    state: state(longUp),
    want: { desired: 40, recommendation: 40, reason: /^within downscale tolerance \(raw 38\.5 > 40 × 0\.95\)$/ },
  },
  {
    name: 'raw 4.8 at 5: ceil is 5 already, so the tolerance is not mentioned',
    cur: 5,
    avg: 4.8,
    state: state(longUp),
    want: { desired: 5, recommendation: 5, reason: /^recommendation 5 equals current$/ },
  },
  {
    name: 'steady: recommendation equals current',
    cur: 3,
    avg: 2.5,
    state: state(longUp),
    want: { desired: 3, recommendation: 3, reason: /^recommendation 3 equals current$/ },
  },
  {
    name: 'downscale capped by factor: 10 → floor min(9, ceil(7.5)) = 8',
    cur: 10,
    avg: 1,
    state: state(longUp),
    want: { desired: 8, recommendation: 8, reason: /^scale down 10 → 8; capped by max_downscale_factor 0\.75 \(floor 8\)$/ },
  },
  {
    name: 'always allow −1: 2 × 0.75 rounds up to 2, floor is 1',
    cur: 2,
    avg: 0,
    state: state(longUp),
    want: { desired: 1, recommendation: 1, reason: /^scale down 2 → 1; capped by max_downscale_factor 0\.75 \(floor 1\)$/ },
  },
  {
    name: 'always allow +1: factor 1.0 still lets 1 → 2',
    spec: { maxUpscaleFactor: 1 },
    cur: 1,
    avg: 50,
    state: state(longUp),
    want: { desired: 2, recommendation: 2, reason: /^scale up 1 → 2; capped by max_upscale_factor 1 \(ceiling 2\)$/ },
  },
  {
    name: 'clamped to max_replicas',
    spec: { maxReplicas: 5 },
    cur: 4,
    avg: 9.3,
    state: state(longUp),
    want: { desired: 5, recommendation: 5, reason: /^scale up 4 → 5; capped by max_upscale_factor 1\.5 \(ceiling 6\); limited to max_replicas 5$/ },
  },
  {
    name: 'raised to min_replicas',
    spec: { minReplicas: 3 },
    cur: 3,
    avg: 0,
    state: state(longUp),
    want: { desired: 3, recommendation: 3, reason: /^capped by max_downscale_factor 0\.75 \(floor 2\); raised to min_replicas 3$/ },
  },
  {
    name: 'no load never goes below 1 replica',
    cur: 1,
    avg: 0,
    state: state(longUp),
    want: { desired: 1, recommendation: 1, reason: /^raised to min_replicas 1$/ },
  },
  {
    name: 'start-up hold: no scale-up in the first upscale period',
    cur: 2,
    avg: 3,
    state: state(50_000),
    want: { desired: 2, recommendation: 3, reason: /^held by start-up \(no scale-up in the first 60s\)$/ },
  },
  {
    name: 'start-up hold ends at exactly the period',
    cur: 2,
    avg: 3,
    state: state(60_000),
    want: { desired: 3, recommendation: 3, reason: /^scale up 2 → 3$/ },
  },
  {
    name: 'start-up hold: no scale-down in the first downscale period',
    cur: 4,
    avg: 2,
    state: state(290_000),
    want: { desired: 4, recommendation: 3, reason: /^capped by max_downscale_factor 0\.75 \(floor 3\); held by start-up \(no scale-down in the first 5m\)$/ },
  },
  {
    name: 'downscale stabilization holds at current while a higher recommendation is in the period (the 0.25 bug would give 8)',
    cur: 10,
    avg: 8,
    state: state(longUp, [[290, 10], [100, 9]]),
    want: { desired: 10, recommendation: 8, reason: /^held by downscale stabilization \(highest rec 10 in last 5m\)$/ },
  },
  {
    name: 'downscale limited to the highest recommendation of the period',
    cur: 10,
    avg: 8,
    state: state(longUp, [[310, 10], [100, 9]]),
    want: { desired: 9, recommendation: 8, reason: /^scale down 10 → 9; limited by downscale stabilization \(highest rec 9 in last 5m\)$/ },
  },
  {
    name: 'a recommendation exactly one period old no longer counts',
    cur: 10,
    avg: 8,
    state: state(longUp, [[300, 10]]),
    want: { desired: 8, recommendation: 8, reason: /^scale down 10 → 8$/ },
  },
  {
    name: 'the upscale ceiling is never below current: old lower recommendations do not force a scale-down',
    cur: 4,
    avg: 5,
    state: state(longUp, [[30, 2]]),
    want: { desired: 4, recommendation: 5, reason: /held by upscale stabilization \(lowest rec 2 in last 60s\)/ },
  },
  {
    name: 'the downscale floor is never above current: higher recommendations do not force a scale-up',
    cur: 4,
    avg: 2,
    state: state(longUp, [[100, 9]]),
    want: { desired: 4, recommendation: 3, reason: /held by downscale stabilization \(highest rec 9 in last 5m\)/ },
  },
  {
    name: 'zero stabilization periods: the recommendation applies at once',
    spec: { downscaleStabilizationPeriodMs: 0, upscaleStabilizationPeriodMs: 0 },
    cur: 4,
    avg: 9.3,
    state: state(0, [[10, 4]]),
    want: { desired: 6, recommendation: 6, reason: /^scale up 4 → 6/ },
  },
  {
    name: 'fractional target: 8 in flight at 1.6 per replica ⇒ 5 replicas (Cortex overprovisioning example)',
    spec: { targetReplicaConcurrency: 1.6, maxUpscaleFactor: 2 },
    cur: 4,
    avg: 8,
    state: state(longUp, [[30, 5]]),
    want: { desired: 5, recommendation: 5, reason: /^scale up 4 → 5$/ },
  },
];

for (const c of cases) {
  test(`cortex: ${c.name}`, () => {
    const spec = autoscalingSpec(c.spec);
    const { decision, state: next } = policy.decide(
      { spec, currentReplicas: c.cur, metrics: { valid: true, avgInFlight: c.avg, panicAvgInFlight: null, avgCpuUtilization: null, replicasReporting: c.cur } },
      c.state,
      NOW,
    );
    const got = { desired: decision.desired, recommendation: decision.recommendation };
    assert.deepEqual(got, { desired: c.want.desired, recommendation: c.want.recommendation }, `reason: ${decision.reason}`);
    assert.match(decision.reason, c.want.reason);
    assert.equal(decision.valid, true);
    assert.equal(decision.avg, c.avg);
    assert.equal(decision.raw, c.avg / spec.targetReplicaConcurrency);
    assert.deepEqual(next.history.at(-1), [NOW, c.want.recommendation], 'the recommendation is recorded before stabilization');
    assert.deepEqual(JSON.parse(JSON.stringify(next)), next, 'state is plain JSON');
  });
}

test('cortex: bounds carry the factor caps and the stabilization bound of the direction taken', () => {
  const spec = autoscalingSpec();
  const { decision } = policy.decide(
    { spec, currentReplicas: 4, metrics: { valid: true, avgInFlight: 9.3, panicAvgInFlight: null, avgCpuUtilization: null, replicasReporting: 4 } },
    state(longUp, [[50, 4]]),
    NOW,
  );
  assert.deepEqual(decision.bounds, { minReplicas: 1, maxReplicas: 100, factorFloor: 3, factorCeiling: 6, stabilizationFloor: null, stabilizationCeiling: 4 });
});

test('cortex: missing data holds, records nothing, and starts the start-up clock on the first tick', () => {
  const spec = autoscalingSpec();
  const r1 = policy.decide({ spec, currentReplicas: 3, metrics: { valid: false, reason: 'no fresh samples' } }, INITIAL_SCALING_POLICY_STATE, 1000);
  assert.equal(r1.decision.valid, false);
  assert.equal(r1.decision.desired, 3);
  assert.equal(r1.decision.avg, null);
  assert.equal(r1.decision.recommendation, null);
  assert.equal(r1.decision.reason, 'metrics unavailable (no fresh samples): holding 3');
  assert.deepEqual(r1.state, { v: 1, startMs: 1000, history: [], panic: null });
  const r2 = policy.decide({ spec, currentReplicas: 3, metrics: { valid: false, reason: 'x' } }, r1.state, 11_000);
  assert.equal(r2.state.startMs, 1000, 'later ticks keep the first tick as start');
});

test('cortex: history keeps only what the longer period can see', () => {
  const spec = autoscalingSpec({ downscaleStabilizationPeriodMs: 30_000, upscaleStabilizationPeriodMs: 20_000 });
  let s: ScalingPolicyState = INITIAL_SCALING_POLICY_STATE;
  for (let t = 0; t <= 100_000; t += 10_000) {
    s = policy.decide({ spec, currentReplicas: 2, metrics: { valid: true, avgInFlight: 2, panicAvgInFlight: null, avgCpuUtilization: null, replicasReporting: 2 } }, s, t).state;
  }
  assert.deepEqual(s.history.map(([t]) => t), [80_000, 90_000, 100_000]);
});
