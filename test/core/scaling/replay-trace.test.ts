import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLoadTrace } from '../../../core/scaling/load-trace.js';
import { replayTrace } from '../../../core/scaling/replay-trace.js';
import { CortexScalingPolicy } from '../../../plugins/scaling-cortex/cortex-scaling-policy.js';
import { CpuScalingPolicy } from '../../../plugins/scaling-cpu/cpu-scaling-policy.js';
import { autoscalingSpec } from '../../harness/autoscaling-spec-fixture.js';
import { ReferenceCortexAutoscaler } from './reference-cortex.js';

const quick = autoscalingSpec({ targetReplicaConcurrency: 2, upscaleStabilizationPeriodMs: 0, downscaleStabilizationPeriodMs: 0, maxUpscaleFactor: 10 });

test('replayTrace: ticks at trace times, total spread over replicas that follow the decisions', () => {
  const trace = parseLoadTrace('t,inflight\n100,8\n130,2\n160,2\n', 'csv', 'trace');
  const ticks = replayTrace({ api: 'a', spec: { ...quick, windowMs: 10_000 }, policy: new CortexScalingPolicy(), trace });
  assert.deepEqual(
    ticks.map((t) => [t.atMs / 1000, t.load.replicasReporting, t.load.avgInFlight, t.decision.current, t.decision.desired]),
    [
      [110, 1, 8, 1, 4],
      [120, 4, 8, 4, 4],
      [130, 4, 8, 4, 4],
      // Scale-down 4 → 3 (factor floor): the replica removed reports a drained 0 once, so the total stays 2.
      [140, 4, 2, 4, 3],
      [150, 3, 2, 3, 2],
      [160, 2, 2, 2, 1],
    ],
  );
});

test('replayTrace: per-replica values report as given whatever the decisions; a silent replica drops out', () => {
  const trace = parseLoadTrace('t,a,b\n0,3,3\n20,3,\n40,3,\n', 'csv', 'trace');
  const ticks = replayTrace({ api: 'a', spec: { ...quick, windowMs: 10_000 }, policy: new CortexScalingPolicy(), trace, replicas: 2 });
  assert.deepEqual(
    ticks.map((t) => [t.atMs / 1000, t.load.replicasReporting, t.load.totalInFlight, t.load.avgInFlight]),
    [
      [10, 2, 6, 6],
      [20, 2, 6, 6],
      // b silent from 20 s: its last sample (19 s) holds until 22.001 s ⇒ (6 × 2.001 + 3 × 7.999) / 10.
      [30, 1, 3, 3.6003],
      [40, 1, 3, 3],
    ],
  );
});

test('replayTrace: an outage in the trace holds the count (metrics unavailable)', () => {
  const trace = parseLoadTrace('t,inflight\n0,8\n20,\n50,8\n60,8\n', 'csv', 'trace');
  const ticks = replayTrace({ api: 'a', spec: quick, policy: new CortexScalingPolicy(), trace, replicas: 4 });
  assert.deepEqual(
    ticks.map((t) => [t.atMs / 1000, t.decision.valid, t.decision.desired]),
    [
      [10, true, 4],
      [20, true, 4],
      [30, false, 4],
      [40, false, 4],
      [50, false, 4],
      [60, true, 4],
    ],
  );
});

test('replayTrace: cpu traces drive the cpu policy', () => {
  const trace = parseLoadTrace('t,inflight,cpu\n0,1,0.9\n20,1,0.9\n', 'csv', 'trace');
  const spec = autoscalingSpec({ policy: 'cpu', targetCpuUtilization: 60, upscaleStabilizationPeriodMs: 0 });
  const ticks = replayTrace({ api: 'a', spec, policy: new CpuScalingPolicy(), trace, replicas: 2 });
  assert.deepEqual(ticks.map((t) => [t.decision.avg, t.decision.raw, t.decision.desired]), [
    [90, 3, 3],
    [90, 4.5, 5],
  ]);
});

test('replayTrace: untilSec extends the last level', () => {
  const trace = parseLoadTrace('0,4\n', 'csv', 'trace');
  const ticks = replayTrace({ api: 'a', spec: quick, policy: new CortexScalingPolicy(), trace, untilSec: 30 });
  assert.deepEqual(ticks.map((t) => t.atMs), [10_000, 20_000, 30_000]);
});

test('replayTrace + reference: every decision of a replayed trace matches the independent Cortex implementation', () => {
  const lines = ['t,inflight'];
  for (let s = 0; s <= 1800; s += 15) lines.push(`${s},${Math.round(20 + 18 * Math.sin(s / 120) + (s % 90 === 0 ? 15 : 0))}`);
  const trace = parseLoadTrace(lines.join('\n'), 'csv', 'trace');
  const spec = autoscalingSpec({ targetReplicaConcurrency: 3, maxReplicas: 30 });
  const ticks = replayTrace({ api: 'a', spec, policy: new CortexScalingPolicy(), trace });
  const ref = new ReferenceCortexAutoscaler({ ...spec, target: spec.targetReplicaConcurrency });
  let changes = 0;
  for (const t of ticks) {
    const want = ref.tick(t.atMs, t.decision.current, t.decision.avg);
    assert.equal(t.decision.desired, want, `at ${t.atMs / 1000} s: ${t.decision.reason}`);
    if (want !== t.decision.current) changes++;
  }
  assert.ok(changes >= 5, `the trace moves the count (${changes} changes)`);
});
