import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AutoscalingSpec } from '../../../core/config/api-spec.js';
import { INITIAL_SCALING_POLICY_STATE, type ScalingMetrics, type ScalingPolicyState } from '../../../core/ports/scaling-policy.js';
import { BurstScalingPolicy } from '../../../plugins/scaling-burst/burst-scaling-policy.js';
import { autoscalingSpec } from '../../harness/autoscaling-spec-fixture.js';
import { prng, randomAverages, randomSpec } from '../../core/scaling/random-trace.js';
import { ReferenceCortexAutoscaler } from '../../core/scaling/reference-cortex.js';

const NOW = 3_600_000;
const policy = new BurstScalingPolicy();
const burstSpec = (o: Partial<AutoscalingSpec> = {}) => autoscalingSpec({ policy: 'burst', tickMs: 2000, ...o });

function state(uptimeMs: number, recs: readonly (readonly [number, number])[] = [], panic: ScalingPolicyState['panic'] = null): ScalingPolicyState {
  return { v: 1, startMs: NOW - uptimeMs, history: recs.map(([ago, r]) => [NOW - ago * 1000, r] as const), panic };
}
const metrics = (avg: number, panicAvg: number): ScalingMetrics => ({
  valid: true,
  avgInFlight: avg,
  panicAvgInFlight: panicAvg,
  avgCpuUtilization: null,
  replicasReporting: 1,
});

interface Case {
  readonly name: string;
  readonly spec?: Partial<AutoscalingSpec>;
  readonly cur: number;
  readonly avg: number;
  readonly panicAvg: number;
  readonly state: ScalingPolicyState;
  readonly want: {
    readonly desired: number;
    readonly recommendation: number;
    readonly panic: ScalingPolicyState['panic'];
    readonly reason: RegExp;
  };
}

const long = 3_600_000;
const cases: Case[] = [
  {
    name: 'below the threshold it is the cortex policy (held by upscale stabilization)',
    cur: 2,
    avg: 3,
    panicAvg: 3.9,
    state: state(long, [[30, 2]]),
    want: { desired: 2, recommendation: 3, panic: null, reason: /^held by upscale stabilization \(lowest rec 2 in last 60s\)$/ },
  },
  {
    name: 'panic window asking 2× current enters panic and scales at once, ignoring stabilization',
    cur: 2,
    avg: 3,
    panicAvg: 10,
    state: state(long, [[30, 2]]),
    want: {
      desired: 10,
      recommendation: 10,
      panic: { sinceMs: NOW, lastOverMs: NOW },
      reason: /^scale up 2 → 10; entered panic mode \(10 in flight over the last 6s ⇒ 10 replicas, threshold 4\); panic window asks 10, upscale stabilization ignored$/,
    },
  },
  {
    name: 'exactly at the threshold panics (≥)',
    cur: 2,
    avg: 2,
    panicAvg: 4,
    state: state(long),
    want: { desired: 4, recommendation: 4, panic: { sinceMs: NOW, lastOverMs: NOW }, reason: /^scale up 2 → 4; entered panic mode/ },
  },
  {
    name: 'panic ignores the start-up hold for scale-up',
    cur: 1,
    avg: 1,
    panicAvg: 5,
    state: state(4000),
    want: { desired: 5, recommendation: 5, panic: { sinceMs: NOW, lastOverMs: NOW }, reason: /^scale up 1 → 5; entered panic mode/ },
  },
  {
    name: 'panic scale-up is bounded by max_replicas',
    spec: { maxReplicas: 6 },
    cur: 2,
    avg: 3,
    panicAvg: 40,
    state: state(long),
    want: { desired: 6, recommendation: 6, panic: { sinceMs: NOW, lastOverMs: NOW }, reason: /^scale up 2 → 6; entered panic mode/ },
  },
  {
    name: 'a fractional target: 9 in flight at target 1.5 asks 6',
    spec: { targetReplicaConcurrency: 1.5 },
    cur: 2,
    avg: 3,
    panicAvg: 9,
    state: state(long),
    want: { desired: 6, recommendation: 6, panic: { sinceMs: NOW, lastOverMs: NOW }, reason: /threshold 4\)/ },
  },
  {
    name: 'while panicking it never scales down',
    cur: 10,
    avg: 2,
    panicAvg: 1,
    state: state(long, [[400, 10]], { sinceMs: NOW - 40_000, lastOverMs: NOW - 30_000 }),
    want: {
      desired: 10,
      recommendation: 8,
      panic: { sinceMs: NOW - 40_000, lastOverMs: NOW - 30_000 },
      reason: /^in panic mode \(1 in flight over the last 6s ⇒ 1 replicas, threshold 20\); no scale-down while panicking \(stable window asks 8\)$/,
    },
  },
  {
    name: 'crossing the threshold again refreshes the panic but keeps its start',
    cur: 4,
    avg: 4,
    panicAvg: 9,
    state: state(long, [], { sinceMs: NOW - 40_000, lastOverMs: NOW - 30_000 }),
    want: { desired: 9, recommendation: 9, panic: { sinceMs: NOW - 40_000, lastOverMs: NOW }, reason: /^scale up 4 → 9; in panic mode/ },
  },
  {
    name: 'panic ends after a full window below the threshold; cortex rules resume (scale-down limited by the recorded panic)',
    cur: 10,
    avg: 2,
    panicAvg: 1,
    state: state(long, [[400, 10], [200, 10]], { sinceMs: NOW - 100_000, lastOverMs: NOW - 60_000 }),
    want: {
      desired: 10,
      recommendation: 8,
      panic: null,
      reason: /^capped by max_downscale_factor 0\.75 \(floor 8\); held by downscale stabilization \(highest rec 10 in last 5m\); panic ended \(below threshold for 60s\)$/,
    },
  },
  {
    name: 'one ms before a full window the panic still holds',
    cur: 10,
    avg: 2,
    panicAvg: 1,
    state: state(long, [], { sinceMs: NOW - 100_000, lastOverMs: NOW - 59_999 }),
    want: { desired: 10, recommendation: 8, panic: { sinceMs: NOW - 100_000, lastOverMs: NOW - 59_999 }, reason: /^in panic mode/ },
  },
  {
    name: 'in panic, a stable scale-up above the panic want is taken as cortex decides it',
    spec: { upscaleStabilizationPeriodMs: 0 },
    cur: 4,
    avg: 30,
    panicAvg: 5,
    state: state(long, [], { sinceMs: NOW - 10_000, lastOverMs: NOW - 5000 }),
    want: { desired: 6, recommendation: 6, panic: { sinceMs: NOW - 10_000, lastOverMs: NOW - 5000 }, reason: /^scale up 4 → 6; capped by max_upscale_factor 1\.5 \(ceiling 6\); in panic mode/ },
  },
];

for (const c of cases) {
  test(`burst: ${c.name}`, () => {
    const { decision, state: next } = policy.decide({ spec: burstSpec(c.spec), currentReplicas: c.cur, metrics: metrics(c.avg, c.panicAvg) }, c.state, NOW);
    assert.deepEqual(
      { desired: decision.desired, recommendation: decision.recommendation, panic: next.panic },
      { desired: c.want.desired, recommendation: c.want.recommendation, panic: c.want.panic },
      `reason: ${decision.reason}`,
    );
    assert.match(decision.reason, c.want.reason);
    assert.equal(decision.panic?.active, c.want.panic !== null);
    assert.deepEqual(next.history.at(-1), [NOW, c.want.recommendation]);
    assert.deepEqual(JSON.parse(JSON.stringify(next)), next);
  });
}

test('burst: missing data holds and keeps the panic as it was', () => {
  const s = state(long, [], { sinceMs: NOW - 10_000, lastOverMs: NOW - 10_000 });
  const r = policy.decide({ spec: burstSpec(), currentReplicas: 8, metrics: { valid: false, reason: 'no fresh samples' } }, s, NOW);
  assert.equal(r.decision.desired, 8);
  assert.equal(r.decision.valid, false);
  assert.deepEqual(r.state, s);
});

test('burst: with a panic window that never crosses the threshold it decides exactly as the reference Cortex', () => {
  for (let seed = 1; seed <= 100; seed++) {
    const rnd = prng(seed);
    const spec = { ...randomSpec(rnd), policy: 'burst' as const, panicThreshold: 1e9 };
    const ref = new ReferenceCortexAutoscaler({ ...spec, target: spec.targetReplicaConcurrency });
    const avgs = randomAverages(rnd, 100, spec.targetReplicaConcurrency * spec.maxReplicas * 0.6);
    let cur = spec.minReplicas;
    let s: ScalingPolicyState = INITIAL_SCALING_POLICY_STATE;
    for (let i = 0; i < avgs.length; i++) {
      const now = i * 2000;
      const avg = avgs[i];
      const m: ScalingMetrics = avg === null ? { valid: false, reason: 'none' } : metrics(avg, avg);
      const r = policy.decide({ spec, currentReplicas: cur, metrics: m }, s, now);
      const want = ref.tick(now, cur, avg);
      assert.equal(r.decision.desired, want, `seed ${seed} tick ${i}: want ${want} got ${r.decision.desired} (${r.decision.reason})`);
      s = r.state;
      cur = want;
    }
  }
});

test('burst: a step from 2 to 40 in flight is answered in one tick; the panic lasts a window after the last crossing', () => {
  const spec = burstSpec({ targetReplicaConcurrency: 1, maxReplicas: 50 });
  let s: ScalingPolicyState = INITIAL_SCALING_POLICY_STATE;
  let cur = 2;
  const seen: { t: number; desired: number; panic: boolean }[] = [];
  // 2 s ticks; load 2 until 120 s, 40 until 180 s, then 2 again. Stand-ins for the two windows: the
  // panic window sees the step at once, the stable one only a quarter of it.
  for (let t = 2000; t <= 600_000; t += 2000) {
    const step = t > 120_000 && t <= 180_000;
    const r = policy.decide({ spec, currentReplicas: cur, metrics: metrics(step ? 10 : 2, step ? 40 : 2) }, s, t);
    s = r.state;
    cur = r.decision.desired;
    seen.push({ t, desired: cur, panic: r.decision.panic?.active ?? false });
  }
  const at = (t: number) => seen.find((x) => x.t === t);
  assert.deepEqual(at(120_000), { t: 120_000, desired: 2, panic: false });
  assert.deepEqual(at(122_000), { t: 122_000, desired: 40, panic: true }, 'one tick after the step');
  // At 40 replicas, 40 in flight is below 2 × 40: the last crossing was at 122 s, so the panic ends at 182 s.
  assert.deepEqual(at(180_000), { t: 180_000, desired: 40, panic: true });
  assert.deepEqual(at(182_000), { t: 182_000, desired: 40, panic: false }, 'held by the recorded panic recommendation');
  const firstDown = seen.find((x) => x.t > 182_000 && x.desired < 40);
  assert.deepEqual(firstDown, { t: 480_000, desired: 30, panic: false }, 'the last panic recommendation (180 s) ages out of the 5 m period');
});
