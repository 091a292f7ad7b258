import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { map } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { decideScale, tickMetrics } from '../../../core/operators/decide-scale.js';
import type { ScalingPolicyState } from '../../../core/ports/scaling-policy.js';
import { CortexScalingPolicy } from '../../../plugins/scaling-cortex/cortex-scaling-policy.js';
import { autoscalingSpec } from '../../harness/autoscaling-spec-fixture.js';
import { load } from './tick-fixture.js';

let scheduler: TestScheduler;
beforeEach(() => {
  scheduler = new TestScheduler((got, want) => assert.deepEqual(got, want));
});

const spec = autoscalingSpec({ upscaleStabilizationPeriodMs: 0, downscaleStabilizationPeriodMs: 0, maxUpscaleFactor: 10 });
const policy = new CortexScalingPolicy();

test('decideScale runs the policy per tick, and the count follows the decisions', () => {
  scheduler.run(({ cold, expectObservable }) => {
    const loads = cold('a 9ms b 9ms c 9ms d', { a: load(0, 4), b: load(10, 4), c: load(20, null), d: load(30, 2) });
    const out = loads.pipe(
      decideScale({ api: 'iris', spec, policy, initialReplicas: 1 }),
      map((t) => `${t.decision.current}→${t.decision.desired}${t.decision.valid ? '' : '?'}`),
    );
    expectObservable(out).toBe('a 9ms b 9ms c 9ms d', { a: '1→4', b: '4→4', c: '4→4?', d: '4→3' });
  });
});

test('decideScale takes the orchestrator’s count from currentReplicas$', () => {
  scheduler.run(({ cold, hot, expectObservable }) => {
    const loads = cold('a 9ms b 9ms c', { a: load(0, 4), b: load(10, 4), c: load(20, 4) });
    const current$ = hot('----- 9ms n', { n: 2 });
    const out = loads.pipe(
      decideScale({ api: 'iris', spec, policy, initialReplicas: 4, currentReplicas$: current$ }),
      map((t) => `${t.decision.current}→${t.decision.desired}`),
    );
    // The redeploy clamp to 2 at 14 ms is what the tick at 20 ms decides from.
    expectObservable(out).toBe('a 9ms b 9ms c', { a: '4→4', b: '4→4', c: '2→4' });
  });
});

test('decideScale threads the policy state and starts from a restored one', () => {
  scheduler.run(({ cold, expectObservable }) => {
    const restored: ScalingPolicyState = { v: 1, startMs: -1_000_000, history: [[-5, 9]], panic: null };
    const stabilized = autoscalingSpec();
    const loads = cold('a', { a: load(0, 1) });
    const out = loads.pipe(
      decideScale({ api: 'iris', spec: stabilized, policy, initialReplicas: 9, initialState: restored }),
      map((t) => ({ desired: t.decision.desired, history: t.state.history })),
    );
    // The restored recommendation of 9 five ms ago holds the count (downscale stabilization survives a restart).
    expectObservable(out).toBe('a', { a: { desired: 9, history: [[-5, 9], [0, 7]] } });
  });
});

test('decideScale forwards completion and errors', () => {
  scheduler.run(({ cold, expectObservable }) => {
    const out = cold('a |', { a: load(0, 1) }).pipe(decideScale({ api: 'iris', spec, policy, initialReplicas: 1 }), map((t) => t.decision.desired));
    expectObservable(out).toBe('a |', { a: 1 });
    const failed = cold<ReturnType<typeof load>>('#', {}, new Error('boom')).pipe(decideScale({ api: 'iris', spec, policy, initialReplicas: 1 }));
    expectObservable(failed).toBe('#', {}, new Error('boom'));
  });
});

test('tickMetrics: no reporting replica, or nothing in the window, is "no data"', () => {
  const cases = [
    { name: 'no replica', load: { ...load(0, 3), replicasReporting: 0 }, want: { valid: false, reason: 'no fresh samples from any replica' } },
    { name: 'window empty', load: { ...load(0, 3), avgInFlight: null }, want: { valid: false, reason: 'no samples in the window yet' } },
    { name: 'data', load: load(0, 3), want: { valid: true, avgInFlight: 3, panicAvgInFlight: 3, avgCpuUtilization: null, replicasReporting: 1 } },
  ];
  for (const c of cases) assert.deepEqual(tickMetrics(c.load), c.want, c.name);
});

test('decideScale uses new settings from spec$ from the next tick on', () => {
  scheduler.run(({ cold, hot, expectObservable }) => {
    const loads = cold('a 9ms b', { a: load(0, 8), b: load(10, 8) });
    const spec$ = hot('--- 4ms s', { s: { ...spec, maxReplicas: 3 } });
    const out = loads.pipe(decideScale({ api: 'iris', spec, policy, initialReplicas: 8, spec$ }), map((t) => t.decision.desired));
    expectObservable(out).toBe('a 9ms b', { a: 8, b: 3 });
  });
});

test('decideScale turns an exception thrown by the policy into an error notification', () => {
  scheduler.run(({ cold, expectObservable }) => {
    const broken = { kind: 'cortex', metric: 'inFlight' as const, decide: () => { throw new Error('policy bug'); } };
    const out = cold('a 9ms b', { a: load(0, 1), b: load(10, 1) }).pipe(decideScale({ api: 'iris', spec, policy: broken, initialReplicas: 1 }));
    expectObservable(out).toBe('#', {}, new Error('policy bug'));
  });
});
