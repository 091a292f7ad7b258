import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Subject } from 'rxjs';
import type { AutoscalingSpec } from '../../../core/config/api-spec.js';
import { loadIn } from '../config/config-test-helpers.js';
import type { MetricSample } from '../../../core/metrics/metric-sample.js';
import { INITIAL_SCALING_POLICY_STATE, type ScalingMetrics, type ScalingPolicy, type ScalingPolicyState } from '../../../core/ports/scaling-policy.js';
import { ApiScaler } from '../../../core/scaling/api-scaler.js';
import { ReplayScheduler } from '../../../core/scaling/replay-scheduler.js';
import { decideFromZero, decidePoke } from '../../../core/scaling/scale-from-zero.js';
import type { ScalingTick } from '../../../core/scaling/scaling-tick.js';
import { BurstScalingPolicy } from '../../../plugins/scaling-burst/burst-scaling-policy.js';
import { CortexScalingPolicy } from '../../../plugins/scaling-cortex/cortex-scaling-policy.js';
import { autoscalingSpec } from '../../harness/autoscaling-spec-fixture.js';
import { sample } from '../operators/sample-fixture.js';

// Scale to zero in the policies (pure, virtual time): an idle API reaches 0 only after a whole
// downscale stabilization period of no traffic, never below min_replicas, and leaves 0 at once when
// requests are held at the gateway (the poke, or the held load in the next tick).

const valid = (avgInFlight: number, panicAvgInFlight: number | null = null): ScalingMetrics => ({
  valid: true,
  avgInFlight,
  panicAvgInFlight,
  avgCpuUtilization: null,
  replicasReporting: 1,
});

/** Ticks every `tickMs` from `tickMs` to `untilMs`; `avgAt(t)` is the window mean (null: no data). Returns [t, current, desired] of every change. */
function ticks(policy: ScalingPolicy, spec: AutoscalingSpec, start: number, untilMs: number, avgAt: (tMs: number) => number | null): Array<[number, number, number]> {
  let state: ScalingPolicyState = INITIAL_SCALING_POLICY_STATE;
  let current = start;
  const changes: Array<[number, number, number]> = [];
  for (let t = spec.tickMs; t <= untilMs; t += spec.tickMs) {
    const avg = avgAt(t);
    const metrics: ScalingMetrics = avg === null ? { valid: false, reason: 'no fresh samples from any replica' } : valid(avg, avg);
    const r = policy.decide({ spec, currentReplicas: current, metrics }, state, t);
    if (r.decision.desired !== current) changes.push([t / 1000, current, r.decision.desired]);
    state = r.state;
    current = r.decision.desired;
  }
  return changes;
}

describe('policies with min_replicas 0', () => {
  // Defaults: tick 10 s, downscale stabilization 5 m (the first tick at 10 s starts the start-up hold).
  const idle = autoscalingSpec({ minReplicas: 0 });
  const cases: ReadonlyArray<{ name: string; policy: ScalingPolicy; spec: AutoscalingSpec; start: number; avgAt: (t: number) => number | null; untilMs: number; want: Array<[number, number, number]> }> = [
    {
      name: 'cortex: 1 idle replica goes to 0 once a whole downscale period recommended 0 (start-up hold until 310 s)',
      policy: new CortexScalingPolicy(),
      spec: idle,
      start: 1,
      avgAt: () => 0,
      untilMs: 600_000,
      want: [[310, 1, 0]],
    },
    {
      name: 'cortex: a request at 200 s (rec 1) puts zero off until that recommendation is 5 m old (500 s)',
      policy: new CortexScalingPolicy(),
      spec: idle,
      start: 1,
      avgAt: (t) => (t === 200_000 ? 0.2 : 0),
      untilMs: 600_000,
      want: [[500, 1, 0]],
    },
    {
      name: 'cortex: 2 idle replicas step 2 → 1 → 0, each after its own stabilization period',
      policy: new CortexScalingPolicy(),
      spec: idle,
      start: 2,
      avgAt: () => 0,
      untilMs: 900_000,
      // rec 1 (the −1 step cap) from 10 s; at 310 s ⇒ 1; recs of 1 until 310 s keep it at 1 until 610 s.
      want: [
        [310, 2, 1],
        [610, 1, 0],
      ],
    },
    {
      name: 'cortex: steady traffic never reaches 0',
      policy: new CortexScalingPolicy(),
      spec: idle,
      start: 1,
      avgAt: () => 0.05,
      untilMs: 900_000,
      want: [],
    },
    {
      name: 'cortex: min_replicas 1 never goes below 1',
      policy: new CortexScalingPolicy(),
      spec: autoscalingSpec({ minReplicas: 1 }),
      start: 1,
      avgAt: () => 0,
      untilMs: 900_000,
      want: [],
    },
    {
      name: 'cortex: min_replicas 2 stops at 2',
      policy: new CortexScalingPolicy(),
      spec: autoscalingSpec({ minReplicas: 2 }),
      start: 3,
      avgAt: () => 0,
      untilMs: 900_000,
      want: [[310, 3, 2]],
    },
    {
      name: 'cortex: at zero, no samples holds 0 (nothing reports at zero)',
      policy: new CortexScalingPolicy(),
      spec: idle,
      start: 0,
      avgAt: () => null,
      untilMs: 300_000,
      want: [],
    },
    {
      name: 'cortex: at zero, 12 held at the gateway at target 4 ⇒ 0 → 3 at the next tick (no upscale stabilization)',
      policy: new CortexScalingPolicy(),
      spec: autoscalingSpec({ minReplicas: 0, targetReplicaConcurrency: 4 }),
      start: 0,
      avgAt: (t) => (t < 50_000 ? null : 12),
      untilMs: 60_000,
      want: [[50, 0, 3]],
    },
    {
      name: 'cortex: from zero bounded by max_replicas',
      policy: new CortexScalingPolicy(),
      spec: autoscalingSpec({ minReplicas: 0, maxReplicas: 2 }),
      start: 0,
      avgAt: () => 20,
      untilMs: 10_000,
      want: [[10, 0, 2]],
    },
    {
      name: 'burst: 1 idle replica goes to 0 after the downscale period (tick 2 s: the hold ends at 302 s)',
      policy: new BurstScalingPolicy(),
      spec: autoscalingSpec({ minReplicas: 0, policy: 'burst', tickMs: 2000 }),
      start: 1,
      avgAt: () => 0,
      untilMs: 400_000,
      want: [[302, 1, 0]],
    },
    {
      name: 'burst: a panic never ends at 0 while it lasts; zero only a downscale period after the burst',
      policy: new BurstScalingPolicy(),
      spec: autoscalingSpec({ minReplicas: 0, policy: 'burst', tickMs: 2000, downscaleStabilizationPeriodMs: 60_000, upscaleStabilizationPeriodMs: 0, maxReplicas: 10 }),
      start: 1,
      // 8 in flight from 10 s to 20 s, then nothing.
      avgAt: (t) => (t > 10_000 && t <= 20_000 ? 8 : 0),
      untilMs: 200_000,
      // Panic 1 → 8 at 12 s; panic ends at 80 s (a 60 s window after the last crossing at 20 s); the
      // recommendation 8 recorded at 20 s keeps the floor until 80 s, then ×0.75 steps a minute apart
      // would follow; here every later rec is 0 and the floor is the highest rec of the last minute.
      want: [
        [12, 1, 8],
        [80, 8, 6],
        [140, 6, 5],
        [200, 5, 4],
      ],
    },
    {
      name: 'burst: at zero, held load rises at once',
      policy: new BurstScalingPolicy(),
      spec: autoscalingSpec({ minReplicas: 0, policy: 'burst', tickMs: 2000, targetReplicaConcurrency: 2 }),
      start: 0,
      avgAt: (t) => (t < 6000 ? null : 7),
      untilMs: 6000,
      want: [[6, 0, 4]],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = ticks(c.policy, c.spec, c.start, c.untilMs, c.avgAt);
      assert.deepEqual(got, c.want, `want ${JSON.stringify(c.want)}, got ${JSON.stringify(got)}`);
    });
  }

  test('never below min_replicas: no tick of any idle trace goes under it', () => {
    for (const min of [0, 1, 3]) {
      for (const policy of [new CortexScalingPolicy(), new BurstScalingPolicy()]) {
        const spec = autoscalingSpec({ minReplicas: min, downscaleStabilizationPeriodMs: 20_000, upscaleStabilizationPeriodMs: 0 });
        let state: ScalingPolicyState = INITIAL_SCALING_POLICY_STATE;
        let current = 5;
        for (let t = 10_000; t <= 2_000_000; t += 10_000) {
          const r = policy.decide({ spec, currentReplicas: current, metrics: valid(0) }, state, t);
          assert.ok(r.decision.desired >= min, `${policy.kind} min ${min}: ${r.decision.desired} at ${t} ms`);
          state = r.state;
          current = r.decision.desired;
        }
        assert.equal(current, min, `${policy.kind} ends at min ${min}`);
      }
    }
  });
});

describe('decidePoke / decideFromZero', () => {
  const spec = autoscalingSpec({ minReplicas: 0, targetReplicaConcurrency: 4, maxReplicas: 10 });
  const cases = [
    { name: '0 replicas, 1 held ⇒ 1', current: 0, held: 1, want: 1 },
    { name: '1 starting, 20 held at target 4 ⇒ 5', current: 1, held: 20, want: 5 },
    { name: '5 starting, 20 held ⇒ nothing to do', current: 5, held: 20, want: null },
    { name: '100 held ⇒ max_replicas 10', current: 0, held: 100, want: 10 },
    { name: 'nothing held ⇒ nothing', current: 0, held: 0, want: null },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = decidePoke({ policy: 'cortex', spec, current: c.current, held: c.held, state: INITIAL_SCALING_POLICY_STATE, nowMs: 1000 });
      assert.equal(r?.decision.desired ?? null, c.want, `want ${c.want}, got ${r?.decision.desired}`);
      if (r !== null) {
        assert.equal(r.decision.current, c.current);
        assert.match(r.decision.reason, /^scale up \d+ → \d+; poked: \d+ requests? held at the gateway/);
        assert.deepEqual(r.state.history.at(-1), [1000, c.want], 'the rise is recorded for downscale stabilization');
      }
    });
  }

  test('min_replicas above the need wins', () => {
    const r = decidePoke({ policy: 'cortex', spec: autoscalingSpec({ minReplicas: 2 }), current: 0, held: 1, state: INITIAL_SCALING_POLICY_STATE, nowMs: 0 });
    assert.equal(r?.decision.desired, 2);
  });

  test('after a poke, downscale stabilization keeps the capacity', () => {
    const s = autoscalingSpec({ minReplicas: 0, targetReplicaConcurrency: 1, downscaleStabilizationPeriodMs: 60_000 });
    // Started long ago: no start-up hold, only the poke's recorded 6.
    const up = decidePoke({ policy: 'cortex', spec: s, current: 0, held: 6, state: { v: 1, startMs: -1e6, history: [], panic: null }, nowMs: 10_000 });
    assert.ok(up);
    const policy = new CortexScalingPolicy();
    // 40 s: the highest rec of (−20 s, 40 s] is the poke's 6 ⇒ held at 6 although 1 in flight asks for 5.
    const early = policy.decide({ spec: s, currentReplicas: 6, metrics: valid(1) }, up.state, 40_000);
    assert.equal(early.decision.desired, 6, early.decision.reason);
    // 80 s: the poke's 6 is older than the 60 s period ⇒ 6 → 5 (the −1 step cap).
    const late = policy.decide({ spec: s, currentReplicas: 6, metrics: valid(1) }, up.state, 80_000);
    assert.equal(late.decision.desired, 5, late.decision.reason);
  });

  test('decideFromZero: 0 in flight stays at zero', () => {
    assert.equal(decideFromZero({ policy: 'cortex', spec, avgInFlight: 0, state: INITIAL_SCALING_POLICY_STATE, nowMs: 0 }), null);
    assert.equal(decideFromZero({ policy: 'cortex', spec, avgInFlight: 9, state: INITIAL_SCALING_POLICY_STATE, nowMs: 0 })?.decision.desired, 3);
  });
});

describe('ApiScaler.poke', () => {
  test('a poke decides at once, comes out on ticks$ and events$, and the next ticks go on from it', () => {
    const s = new ReplayScheduler(0);
    const samples = new Subject<MetricSample>();
    const spec = autoscalingSpec({ minReplicas: 0, targetReplicaConcurrency: 2, maxReplicas: 8, tickMs: 1000, windowMs: 2000, upscaleStabilizationPeriodMs: 0, downscaleStabilizationPeriodMs: 5000 });
    const scaler = new ApiScaler({ api: 'zero', spec, policy: new CortexScalingPolicy(), samples$: samples, replicas: 0, scheduler: s });
    const got: ScalingTick[] = [];
    const events: string[] = [];
    scaler.ticks$.subscribe((t) => got.push(t));
    scaler.events$.subscribe((e) => events.push(e.type));
    scaler.start();
    s.advanceTo(3000);
    assert.ok(got.every((t) => t.decision.desired === 0), 'idle at zero holds 0');
    const before = events.length;
    assert.equal(scaler.poke(0), null);
    s.advanceTo(3500);
    const poked = scaler.poke(9);
    assert.ok(poked);
    assert.equal(poked.atMs, 3500);
    assert.equal(poked.decision.desired, 5, poked.decision.reason);
    assert.equal(scaler.currentReplicas(), 5);
    assert.equal(got.at(-1), poked);
    assert.deepEqual(events.slice(before), ['scaling.decided']);
    assert.equal(scaler.poke(9), null, 'a second poke for as many asks nothing more');
    // The replicas report 2 each (10 in flight): the pipeline ticks on from 5 replicas.
    for (let t = 3600; t <= 6000; t += 500) {
      s.advanceTo(t);
      for (let i = 0; i < 5; i++) samples.next(sample(`r${i}`, 2));
    }
    const after = got.filter((t) => t.atMs > 3500);
    assert.ok(after.length >= 2, `ticks after the poke: ${after.length}`);
    assert.ok(after.every((t) => t.decision.current === 5 && t.decision.desired === 5), JSON.stringify(after.map((t) => t.decision.reason)));
    scaler.close();
  });
});

describe('configuration', () => {
  const yaml = (autoscaling: string) => `- name: zero\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n  autoscaling:\n${autoscaling}`;
  test('min_replicas 0 is accepted for RealtimeAPI; init defaults to 1; hold settings resolve', () => {
    const got = loadIn(yaml('    min_replicas: 0\n    max_held_requests: 50\n    hold_timeout: 5s\n'), { 'predictor.py': '' });
    assert.ok(got.ok, got.lines.join('\n'));
    const a = got.result.specs[0].autoscaling;
    assert.deepEqual([a.minReplicas, a.initReplicas, a.maxHeldRequests, a.holdTimeoutMs], [0, 1, 50, 5000]);
    assert.deepEqual(got.lines, []);
  });

  test('init_replicas 0 starts at zero; negative min_replicas is refused; hold settings without min 0 warn', () => {
    const zero = loadIn(yaml('    min_replicas: 0\n    init_replicas: 0\n'), { 'predictor.py': '' });
    assert.ok(zero.ok && zero.result.specs[0].autoscaling.initReplicas === 0);
    const neg = loadIn(yaml('    min_replicas: -1\n'), { 'predictor.py': '' });
    assert.deepEqual(neg.lines, ['7:5: zero: autoscaling.min_replicas: must be greater than or equal to 0 (got -1)']);
    const warn = loadIn(yaml('    hold_timeout: 5s\n'), { 'predictor.py': '' });
    assert.ok(warn.ok);
    assert.deepEqual(warn.lines, ['7:5: zero: autoscaling.hold_timeout: warning: has no effect unless min_replicas is 0 (requests are held only for an API that can scale to zero)']);
    assert.equal(warn.result.specs[0].autoscaling.holdTimeoutMs, undefined);
  });
});
