import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AutoscalingSpec } from '../../../core/config/api-spec.js';
import type { ScalingMetrics, ScalingPolicyState } from '../../../core/ports/scaling-policy.js';
import { CpuScalingPolicy } from '../../../plugins/scaling-cpu/cpu-scaling-policy.js';
import { autoscalingSpec } from '../../harness/autoscaling-spec-fixture.js';

const NOW = 3_600_000;
const policy = new CpuScalingPolicy();
const long: ScalingPolicyState = { v: 1, startMs: 0, history: [], panic: null };
const cpu = (u: number | null): ScalingMetrics => ({ valid: true, avgInFlight: 0, panicAvgInFlight: null, avgCpuUtilization: u, replicasReporting: 4 });

interface Case {
  readonly name: string;
  readonly spec?: Partial<AutoscalingSpec>;
  readonly cur: number;
  readonly util: number | null;
  readonly want: { readonly desired: number; readonly raw: number | null; readonly avg: number | null; readonly reason: RegExp };
}

const cases: Case[] = [
  { name: '4 at 90 % of target 80 % ⇒ raw 4.5 ⇒ 5', cur: 4, util: 0.9, want: { desired: 5, raw: 4.5, avg: 90, reason: /^scale up 4 → 5$/ } },
  { name: '4 at exactly the target ⇒ raw exactly 4', cur: 4, util: 0.8, want: { desired: 4, raw: 4, avg: 80, reason: /^recommendation 4 equals current$/ } },
  { name: '4 at 82 % ⇒ raw 4.1, within upscale tolerance', cur: 4, util: 0.82, want: { desired: 4, raw: 4.1, avg: 82, reason: /^within upscale tolerance/ } },
  { name: '8 at 20 % ⇒ raw 2, capped by the downscale factor at 6', cur: 8, util: 0.2, want: { desired: 6, raw: 2, avg: 20, reason: /^scale down 8 → 6; capped by max_downscale_factor 0\.75 \(floor 6\)$/ } },
  { name: 'target 50 %: 2 at 100 % ⇒ 4, capped to 3', spec: { targetCpuUtilization: 50 }, cur: 2, util: 1, want: { desired: 3, raw: 4, avg: 100, reason: /^scale up 2 → 3; capped by max_upscale_factor/ } },
  { name: 'no CPU reported ⇒ hold', cur: 3, util: null, want: { desired: 3, raw: null, avg: null, reason: /^metrics unavailable \(no replica reports CPU utilization\): holding 3$/ } },
];

for (const c of cases) {
  test(`cpu: ${c.name}`, () => {
    const spec = autoscalingSpec({ policy: 'cpu', targetCpuUtilization: 80, upscaleStabilizationPeriodMs: 0, downscaleStabilizationPeriodMs: 0, ...c.spec });
    const { decision } = policy.decide({ spec, currentReplicas: c.cur, metrics: cpu(c.util) }, long, NOW);
    assert.deepEqual({ desired: decision.desired, raw: decision.raw, avg: decision.avg }, { desired: c.want.desired, raw: c.want.raw, avg: c.want.avg }, decision.reason);
    assert.match(decision.reason, c.want.reason);
    assert.equal(decision.metric, 'cpuUtilization');
  });
}

test('cpu: the same stabilization as cortex applies', () => {
  const spec = autoscalingSpec({ policy: 'cpu', targetCpuUtilization: 80 });
  const s: ScalingPolicyState = { v: 1, startMs: 0, history: [[NOW - 20_000, 4]], panic: null };
  const { decision } = policy.decide({ spec, currentReplicas: 4, metrics: cpu(0.9) }, s, NOW);
  assert.equal(decision.desired, 4);
  assert.match(decision.reason, /held by upscale stabilization \(lowest rec 4 in last 60s\)/);
});
