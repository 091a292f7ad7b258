import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Subject } from 'rxjs';
import type { AutoscalingSpec } from '../../../core/config/api-spec.js';
import type { EngineEvent } from '../../../core/events/engine-event.js';
import type { MetricSample } from '../../../core/metrics/metric-sample.js';
import type { ScalingPolicy } from '../../../core/ports/scaling-policy.js';
import { ApiScaler, scaleApi } from '../../../core/scaling/api-scaler.js';
import { ReplayScheduler } from '../../../core/scaling/replay-scheduler.js';
import type { ScalingTick } from '../../../core/scaling/scaling-tick.js';
import { BurstScalingPolicy } from '../../../plugins/scaling-burst/burst-scaling-policy.js';
import { CortexScalingPolicy } from '../../../plugins/scaling-cortex/cortex-scaling-policy.js';
import { CpuScalingPolicy } from '../../../plugins/scaling-cpu/cpu-scaling-policy.js';
import { sample } from '../operators/sample-fixture.js';
import { autoscalingSpec } from '../../harness/autoscaling-spec-fixture.js';
import { prng, randomSpec } from './random-trace.js';
import { ReferenceCortexAutoscaler } from './reference-cortex.js';

/**
 * Drives one API in virtual time: every second (from 0) the load function gives the total in flight
 * (null: nobody reports), split evenly over the current replicas, which follow the decisions.
 */
function drive(
  scaler: { ticks$: ScalingTick[] | null; push: (s: MetricSample) => void; current: () => number },
  s: ReplayScheduler,
  untilSec: number,
  loadAt: (sec: number) => number | null,
  cpuAt?: (sec: number) => number,
): void {
  for (let sec = 0; sec <= untilSec; sec++) {
    s.advanceTo(sec * 1000);
    const total = loadAt(sec);
    if (total === null) continue;
    const n = scaler.current();
    for (let i = 0; i < n; i++) scaler.push(sample(`r${i}`, total / n, { cpuUtilization: cpuAt?.(sec) }));
  }
}

function run(spec: AutoscalingSpec, policy: ScalingPolicy, untilSec: number, loadAt: (sec: number) => number | null, replicas = spec.minReplicas, cpuAt?: (sec: number) => number) {
  const s = new ReplayScheduler(0);
  const samples = new Subject<MetricSample>();
  const ticks: ScalingTick[] = [];
  let current = replicas;
  const sub = scaleApi(samples, { api: 'iris', spec, policy, replicas, scheduler: s }).subscribe((t) => {
    ticks.push(t);
    current = t.decision.desired;
  });
  drive({ ticks$: ticks, push: (x) => samples.next(x), current: () => current }, s, untilSec, loadAt, cpuAt);
  sub.unsubscribe();
  return ticks;
}

test('pipeline: a load step through the cortex policy follows Cortex step by step (×1.5 per upscale period)', () => {
  const spec = autoscalingSpec({ targetReplicaConcurrency: 1, maxReplicas: 20 });
  const ticks = run(spec, new CortexScalingPolicy(), 300, (sec) => (sec < 60 ? 1 : 12));
  const changes = ticks.filter((t) => t.decision.desired !== t.decision.current).map((t) => [t.atMs / 1000, t.decision.current, t.decision.desired]);
  // The 60 s window fills from 60 s on; up-stabilization needs a minute of recommendations above the current count.
  assert.deepEqual(changes, [
    [120, 1, 2],
    [180, 2, 3],
    [240, 3, 5],
    [300, 5, 8],
  ]);
  const at = (sec: number) => ticks.find((t) => t.atMs === sec * 1000) as ScalingTick;
  const micro = (x: number) => Math.round(x * 1e6) / 1e6;
  assert.equal(at(30).load.avgInFlight, 1, 'the first 30 s: the mean of what is known');
  assert.equal(at(70).load.avgInFlight, micro((50 * 1 + 10 * 12) / 60), 'time-weighted over (10 s, 70 s]');
  assert.equal(at(90).load.avgInFlight, (30 * 1 + 30 * 12) / 60);
  assert.match(at(90).decision.reason, /held by (start-up|upscale stabilization)/);
});

test('pipeline: burst answers the same step before the next 2 s tick (decided between ticks)', () => {
  const spec = autoscalingSpec({ policy: 'burst', tickMs: 2000, targetReplicaConcurrency: 1, maxReplicas: 20 });
  const ticks = run(spec, new BurstScalingPolicy(), 80, (sec) => (sec < 60 ? 1 : 12));
  const first = ticks.find((t) => t.decision.desired > 1) as ScalingTick;
  // Asked every 250 ms between ticks: at 60.5 s the panic window (6 s) holds 5.5 s of 1 and 0.5 s of 12
  // ⇒ 1.917 < 2 × 1 (dropped); at 60.75 s (5.25 + 9) / 6 = 2.375 ≥ 2 ⇒ 3 at once, not at the 62 s tick.
  assert.equal(first.atMs, 60_750);
  assert.equal(first.load.betweenTicks, true);
  assert.equal(first.load.panicAvgInFlight, 2.375);
  assert.equal(first.decision.desired, 3);
  assert.equal(first.decision.panic?.active, true);
  assert.match(first.decision.reason, /decided between ticks$/);
  // Loads between ticks that the policy does not act on are dropped: every other tick is on the 2 s grid.
  assert.ok(ticks.filter((t) => t.load.betweenTicks).every((t) => t.decision.desired > t.decision.current && t.decision.panic?.active));
  assert.ok(ticks.filter((t) => !t.load.betweenTicks).every((t) => t.atMs % 2000 === 0));
  const last = ticks.at(-1) as ScalingTick;
  assert.equal(last.decision.desired, 12, 'reaches 12 in flight / target 1 in seconds');
});

test('pipeline: the cpu policy scales on the replicas’ CPU utilization', () => {
  const spec = autoscalingSpec({ policy: 'cpu', targetCpuUtilization: 50, maxReplicas: 10, upscaleStabilizationPeriodMs: 0, downscaleStabilizationPeriodMs: 0 });
  const ticks = run(spec, new CpuScalingPolicy(), 40, () => 1, 2, () => 0.75);
  assert.deepEqual(
    ticks.map((t) => [t.atMs / 1000, t.decision.avg, t.decision.current, t.decision.desired]),
    [
      [10, 75, 2, 3],
      [20, 75, 3, 5],
      [30, 75, 5, 8],
      [40, 75, 8, 10],
    ],
  );
});

test('pipeline: silence holds the count and never scales down; metrics come back after it', () => {
  const spec = autoscalingSpec({ targetReplicaConcurrency: 1, downscaleStabilizationPeriodMs: 0, upscaleStabilizationPeriodMs: 0, maxUpscaleFactor: 10 });
  const ticks = run(spec, new CortexScalingPolicy(), 150, (sec) => (sec >= 40 && sec < 100 ? null : 6), 6);
  const view = ticks.map((t) => [t.atMs / 1000, t.load.replicasReporting, t.decision.valid, t.decision.desired]);
  assert.deepEqual(view, [
    [10, 6, true, 6],
    [20, 6, true, 6],
    [30, 6, true, 6],
    [40, 6, true, 6],
    // Last samples at 39 s; silent for more than 3 s ⇒ gone at 42.001 s.
    [50, 0, false, 6],
    [60, 0, false, 6],
    [70, 0, false, 6],
    [80, 0, false, 6],
    [90, 0, false, 6],
    [100, 0, false, 6],
    [110, 6, true, 6],
    [120, 6, true, 6],
    [130, 6, true, 6],
    [140, 6, true, 6],
    [150, 6, true, 6],
  ]);
  assert.equal(ticks[4].load.avgInFlight, 6, 'the window still knows 40–42 s, but nobody reports now');
  assert.match(ticks[4].decision.reason, /^metrics unavailable \(no fresh samples from any replica\): holding 6$/);
});

test('pipeline: through ApiScaler, events say metrics.unavailable once per outage and scaling.decided per change', () => {
  const s = new ReplayScheduler(0);
  const samples = new Subject<MetricSample>();
  const spec = autoscalingSpec({ targetReplicaConcurrency: 1, downscaleStabilizationPeriodMs: 0, upscaleStabilizationPeriodMs: 0, maxUpscaleFactor: 10 });
  const scaler = new ApiScaler({ api: 'iris', spec, policy: new CortexScalingPolicy(), samples$: samples, replicas: 2, scheduler: s });
  const events: EngineEvent[] = [];
  const decisions: number[] = [];
  scaler.events$.subscribe((e) => events.push(e));
  scaler.decisions$.subscribe((t) => decisions.push(t.decision.desired));
  scaler.start();
  scaler.start();
  drive({ ticks$: null, push: (x) => samples.next(x), current: () => scaler.currentReplicas() }, s, 60, (sec) => (sec < 30 ? null : 4));
  assert.deepEqual(
    events.map((e) => `${e.t / 1000}:${e.type}`),
    ['10:metrics.unavailable', '40:scaling.decided'],
  );
  assert.deepEqual(decisions, [4]);
  // The orchestrator says it runs 3 (e.g. a redeploy clamped it): the next tick decides from 3.
  scaler.setCurrentReplicas(3);
  const next: ScalingTick[] = [];
  scaler.ticks$.subscribe((t) => next.push(t));
  s.advanceTo(70_000);
  assert.equal(next[0].decision.current, 3);
  scaler.close();
});

test('pipeline: a restored state resumes stabilization instead of starting over (Cortex reset it on restart)', () => {
  const spec = autoscalingSpec({ targetReplicaConcurrency: 1, maxReplicas: 20 });
  const policy = new CortexScalingPolicy();
  // First daemon run: 4 in flight on 4 replicas, doubling at 570 s; the daemon stops after the tick at 600 s.
  const s1 = new ReplayScheduler(0);
  const in1 = new Subject<MetricSample>();
  const first = new ApiScaler({ api: 'iris', spec, policy, samples$: in1, replicas: 4, scheduler: s1 });
  first.start();
  drive({ ticks$: null, push: (x) => in1.next(x), current: () => first.currentReplicas() }, s1, 600, (sec) => (sec < 570 ? 4 : 8));
  assert.equal(first.currentReplicas(), 4, 'the rise is still held by upscale stabilization');
  const persisted = JSON.parse(JSON.stringify(first.state())) as unknown;
  first.close();

  // The daemon restarts at 600 s; the load stays at 8.
  const firstScaleUp = (state: unknown) => {
    const s2 = new ReplayScheduler(600_000);
    const in2 = new Subject<MetricSample>();
    const scaler = new ApiScaler({ api: 'iris', spec, policy, samples$: in2, replicas: 4, scheduler: s2, state });
    const ticks: ScalingTick[] = [];
    scaler.ticks$.subscribe((t) => ticks.push(t));
    scaler.start();
    for (let sec = 600; sec <= 780; sec++) {
      s2.advanceTo(sec * 1000);
      for (let i = 0; i < scaler.currentReplicas(); i++) in2.next(sample(`r${i}`, 8 / scaler.currentReplicas()));
    }
    scaler.close();
    return ticks.find((t) => t.decision.desired > 4);
  };
  const restored = firstScaleUp(persisted);
  const fresh = firstScaleUp(undefined);
  // Restored: the recommendations above 4 since 580 s (before the restart) count.
  // At 630 s the upscale period (570 s, 630 s] holds 5 (580 s) and 6s: limited to 5.
  assert.deepEqual([restored?.atMs, restored?.decision.desired], [630_000, 5]);
  // Fresh (Cortex after a restart): the start-up hold keeps 4 until a minute after the first tick (610 s).
  assert.deepEqual([fresh?.atMs, fresh?.decision.desired], [670_000, 6]);
});

test('pipeline: an invalid persisted state is ignored (fresh start) rather than crashing', () => {
  const s = new ReplayScheduler(0);
  const scaler = new ApiScaler({ api: 'iris', spec: autoscalingSpec(), policy: new CortexScalingPolicy(), samples$: new Subject<MetricSample>(), replicas: 1, scheduler: s, state: { v: 2 } });
  assert.equal(scaler.state().startMs, null);
});

test('pipeline: reconfigure with the same windows keeps them; with a new tick it restarts from the same state', () => {
  const s = new ReplayScheduler(0);
  const samples = new Subject<MetricSample>();
  const spec = autoscalingSpec({ targetReplicaConcurrency: 1, upscaleStabilizationPeriodMs: 0, downscaleStabilizationPeriodMs: 0, maxUpscaleFactor: 10 });
  const scaler = new ApiScaler({ api: 'iris', spec, policy: new CortexScalingPolicy(), samples$: samples, replicas: 1, scheduler: s });
  const ticks: ScalingTick[] = [];
  scaler.ticks$.subscribe((t) => ticks.push(t));
  scaler.start();
  const feed = (fromSec: number, toSec: number) => {
    for (let sec = fromSec; sec <= toSec; sec++) {
      s.advanceTo(sec * 1000);
      samples.next(sample('r0', 9));
    }
  };
  feed(0, 25);
  scaler.reconfigure({ ...spec, maxReplicas: 3 });
  feed(26, 30);
  assert.deepEqual(ticks.map((t) => [t.atMs, t.decision.desired]), [[10_000, 9], [20_000, 9], [30_000, 3]]);
  assert.equal(ticks[2].load.coveredMs, 30_000, 'same windows: the data since 0 s is still there');
  scaler.reconfigure({ ...spec, maxReplicas: 3, tickMs: 5000 });
  feed(31, 40);
  assert.deepEqual(ticks.slice(3).map((t) => [t.atMs, t.load.coveredMs]), [[35_000, 4000], [40_000, 9000]], 'restarted: 5 s ticks, windows refilled from 31 s');
  assert.equal(ticks.at(-1)?.state.startMs, 10_000, 'the policy state carried over');
  scaler.close();
});

test('pipeline cross-check: window means and decisions match an independent computation on random traces', () => {
  for (let seed = 1; seed <= 30; seed++) {
    const rnd = prng(1000 + seed);
    const base = randomSpec(rnd);
    const tickMs = [5000, 10_000][Math.floor(rnd() * 2)];
    const spec = { ...base, tickMs, windowMs: tickMs * (1 + Math.floor(rnd() * 6)) };
    // Total in flight per second: random walk with steps, one sample per second from a single replica.
    const levels: number[] = [];
    let l = rnd() * spec.maxReplicas * spec.targetReplicaConcurrency;
    for (let sec = 0; sec <= 900; sec++) {
      if (rnd() < 0.03) l = rnd() * spec.maxReplicas * spec.targetReplicaConcurrency;
      else l = Math.max(0, l + (rnd() - 0.5) * 2);
      levels.push(Math.round(l * 4) / 4);
    }
    const s = new ReplayScheduler(0);
    const samples = new Subject<MetricSample>();
    const ticks: ScalingTick[] = [];
    const sub = scaleApi(samples, { api: 'iris', spec, policy: new CortexScalingPolicy(), replicas: spec.minReplicas, scheduler: s }).subscribe((t) => ticks.push(t));
    for (let sec = 0; sec <= 900; sec++) {
      s.advanceTo(sec * 1000);
      samples.next(sample('only', levels[sec]));
    }
    sub.unsubscribe();

    const ref = new ReferenceCortexAutoscaler({ ...spec, target: spec.targetReplicaConcurrency });
    let cur = spec.minReplicas;
    for (const t of ticks) {
      // Each sample holds for one second; the tick at T sees samples at 0 … T − 1 s.
      const lastSec = t.atMs / 1000 - 1;
      const firstSec = Math.max(0, lastSec - spec.windowMs / 1000 + 1);
      const window = levels.slice(firstSec, lastSec + 1);
      const wantAvg = Math.round((window.reduce((a, b) => a + b, 0) / window.length) * 1e6) / 1e6;
      assert.equal(t.load.avgInFlight, wantAvg, `seed ${seed} at ${t.atMs}`);
      const want = ref.tick(t.atMs, cur, wantAvg);
      assert.equal(t.decision.desired, want, `seed ${seed} at ${t.atMs}: ${t.decision.reason}`);
      cur = want;
    }
  }
});

test('pipeline: a failing policy is logged and the scaler restarts one tick later from the last state', async () => {
  const { pino } = await import('pino');
  const { Writable } = await import('node:stream');
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c)) as Record<string, unknown>), cb()) }));
  const cortex = new CortexScalingPolicy();
  let calls = 0;
  const flaky: ScalingPolicy = {
    kind: 'cortex',
    metric: 'inFlight',
    decide(input, state, nowMs) {
      calls++;
      if (calls === 2) throw new Error('policy bug');
      return cortex.decide(input, state, nowMs);
    },
  };
  const s = new ReplayScheduler(0);
  const samples = new Subject<MetricSample>();
  const spec = autoscalingSpec({ targetReplicaConcurrency: 1, upscaleStabilizationPeriodMs: 0, maxUpscaleFactor: 10 });
  const scaler = new ApiScaler({ api: 'iris', spec, policy: flaky, samples$: samples, replicas: 1, scheduler: s, log });
  const ticks: ScalingTick[] = [];
  scaler.ticks$.subscribe((t) => ticks.push(t));
  scaler.start();
  drive({ ticks$: null, push: (x) => samples.next(x), current: () => scaler.currentReplicas() }, s, 45, () => 3);
  // 10 s: ok; 20 s: throws ⇒ restart at 30 s (new windows), first tick of the new chain at 40 s.
  assert.deepEqual(ticks.map((t) => [t.atMs, t.decision.desired, t.state.startMs]), [[10_000, 3, 10_000], [40_000, 3, 10_000]]);
  const err = lines.find((l) => l.msg === 'autoscaler pipeline failed; restarting it from the last state');
  assert.equal(err?.component, 'scaling/api-scaler');
  assert.equal(err?.api, 'iris');
  assert.equal((err?.err as { message: string }).message, 'policy bug');
  scaler.close();
});
