import assert from 'node:assert/strict';
import { test } from 'node:test';
import { INITIAL_SCALING_POLICY_STATE, type ScalingMetrics, type ScalingPolicyState } from '../../../core/ports/scaling-policy.js';
import { CortexScalingPolicy } from '../../../plugins/scaling-cortex/cortex-scaling-policy.js';
import { prng, randomAverages, randomSpec } from './random-trace.js';
import { ReferenceCortexAutoscaler } from './reference-cortex.js';

const TRACES = 300;
const TICKS = 150;

test(`cortex policy matches the independent reference decision by decision on ${TRACES} random traces`, () => {
  const policy = new CortexScalingPolicy();
  let decisions = 0;
  let changes = 0;
  for (let seed = 1; seed <= TRACES; seed++) {
    const rnd = prng(seed);
    const spec = randomSpec(rnd);
    const ref = new ReferenceCortexAutoscaler({ ...spec, target: spec.targetReplicaConcurrency });
    const avgs = randomAverages(rnd, TICKS, spec.targetReplicaConcurrency * spec.maxReplicas * 0.6);
    let cur = spec.minReplicas + Math.floor(rnd() * (spec.maxReplicas - spec.minReplicas + 1));
    let refCur = cur;
    let state: ScalingPolicyState = INITIAL_SCALING_POLICY_STATE;
    // Ticks every 10 s, with an occasional late tick (cron drift), starting at an arbitrary epoch.
    let now = 1_700_000_000_000 + Math.floor(rnd() * 1e6);
    for (let i = 0; i < TICKS; i++) {
      now += rnd() < 0.1 ? 10_000 + Math.floor(rnd() * 3000) : 10_000;
      const avg = avgs[i];
      const metrics: ScalingMetrics =
        avg === null
          ? { valid: false, reason: 'no fresh samples' }
          : { valid: true, avgInFlight: avg, panicAvgInFlight: null, avgCpuUtilization: null, replicasReporting: 1 };
      const r = policy.decide({ spec, currentReplicas: cur, metrics }, state, now);
      const want = ref.tick(now, refCur, avg);
      const ctx = `seed ${seed} tick ${i} (avg ${avg}, cur ${cur}): ${r.decision.reason}`;
      assert.equal(r.decision.desired, want, `desired: want ${want} got ${r.decision.desired}; ${ctx}`);
      assert.equal(r.decision.recommendation, ref.lastRecommendation, `recommendation; ${ctx}`);
      // Round-trip the state through JSON every tick: a restart at any tick changes nothing.
      state = JSON.parse(JSON.stringify(r.state)) as ScalingPolicyState;
      if (want !== cur) changes++;
      cur = r.decision.desired;
      refCur = want;
      decisions++;
    }
  }
  assert.ok(changes > decisions / 20, `the traces exercise scaling (${changes} changes in ${decisions} ticks)`);
});
