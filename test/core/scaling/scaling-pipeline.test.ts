import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Subject } from 'rxjs';
import type { EngineEvent } from '../../../core/events/engine-event.js';
import type { MetricSample } from '../../../core/metrics/metric-sample.js';
import { ReplayScheduler } from '../../../core/scaling/replay-scheduler.js';
import { ScalingPipeline } from '../../../core/scaling/scaling-pipeline.js';
import type { ScalingTick } from '../../../core/scaling/scaling-tick.js';
import { BurstScalingPolicy } from '../../../plugins/scaling-burst/burst-scaling-policy.js';
import { CortexScalingPolicy } from '../../../plugins/scaling-cortex/cortex-scaling-policy.js';
import { sample } from '../operators/sample-fixture.js';
import { autoscalingSpec } from '../../harness/autoscaling-spec-fixture.js';

test('ScalingPipeline routes one sample stream to each API’s scaler and merges ticks, decisions and events', () => {
  const s = new ReplayScheduler(0);
  const samples = new Subject<MetricSample>();
  const pipeline = new ScalingPipeline({ samples$: samples, scheduler: s });
  const quick = autoscalingSpec({ targetReplicaConcurrency: 1, upscaleStabilizationPeriodMs: 0, downscaleStabilizationPeriodMs: 0, maxUpscaleFactor: 10 });
  const cortex = new CortexScalingPolicy();
  pipeline.upsertApi({ api: 'a', spec: quick, policy: cortex, replicas: 1 });
  pipeline.upsertApi({ api: 'b', spec: { ...quick, policy: 'burst', tickMs: 2000 }, policy: new BurstScalingPolicy(), replicas: 1 });
  const ticks: ScalingTick[] = [];
  const decisions: ScalingTick[] = [];
  const events: EngineEvent[] = [];
  pipeline.ticks$.subscribe((t) => ticks.push(t));
  pipeline.decisions$.subscribe((t) => decisions.push(t));
  pipeline.events$.subscribe((e) => events.push(e));
  pipeline.start();
  for (let sec = 0; sec <= 10; sec++) {
    s.advanceTo(sec * 1000);
    samples.next(sample('a0', 3, { api: 'a' }));
    samples.next(sample('b0', 5, { api: 'b' }));
    samples.next(sample('x0', 5, { api: 'unknown' }));
  }
  assert.deepEqual(pipeline.stats(), { routed: 22, unrouted: 11 });
  assert.deepEqual(
    ticks.map((t) => `${t.api}@${t.atMs / 1000}`),
    // b (burst) also decides between ticks: 5 in flight at once is a panic, taken 250 ms in.
    ['b@0.25', 'b@2', 'b@4', 'b@6', 'b@8', 'a@10', 'b@10'],
  );
  assert.deepEqual(
    decisions.map((t) => `${t.api}@${t.atMs / 1000}:${t.decision.current}→${t.decision.desired}`),
    ['b@0.25:1→5', 'a@10:1→3'],
  );
  assert.deepEqual(events.map((e) => `${e.api}:${e.type}`), ['b:scaling.decided', 'a:scaling.decided']);

  // Reconfigure through upsert keeps the scaler and its state; remove stops its ticks.
  const a = pipeline.scaler('a');
  assert.equal(pipeline.upsertApi({ api: 'a', spec: { ...quick, maxReplicas: 2 }, policy: cortex, replicas: 3 }), a);
  pipeline.removeApi('b');
  const before = ticks.length;
  for (let sec = 11; sec <= 20; sec++) {
    s.advanceTo(sec * 1000);
    samples.next(sample('a0', 3, { api: 'a' }));
    samples.next(sample('b0', 5, { api: 'b' }));
  }
  assert.deepEqual(ticks.slice(before).map((t) => `${t.api}@${t.atMs / 1000}:${t.decision.desired}`), ['a@20:2']);
  assert.equal(pipeline.stats().unrouted, 21);
  pipeline.close();
});
