/**
 * The scaling pipeline fed over NATS, with the nats-server killed and restarted mid-run. Virtual time
 * (ReplayScheduler) drives the ticks; samples travel for real: each virtual second the replicas'
 * samples are published over NATS and the test waits until they came out of `samples$` before it
 * advances the clock. While the server is down no sample arrives: the pipeline must hold the count
 * (never read silence as zero load), say `metrics.unavailable`, and scale again once samples are back.
 * Its events go out on a NATS event bus too, so the `metrics.unavailable` raised during the outage is
 * delivered (and stored by JetStream) after it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ManualClock } from '../../core/clock.js';
import type { EngineEvent } from '../../core/events/engine-event.js';
import type { MetricSample } from '../../core/metrics/metric-sample.js';
import { ReplayScheduler } from '../../core/scaling/replay-scheduler.js';
import { ScalingPipeline } from '../../core/scaling/scaling-pipeline.js';
import type { ScalingTick } from '../../core/scaling/scaling-tick.js';
import { CortexScalingPolicy } from '../../plugins/scaling-cortex/cortex-scaling-policy.js';
import { NatsEventBus } from '../../adapters/transport/nats/nats-event-bus.js';
import { NatsMetricsTransport } from '../../adapters/transport/nats/nats-metrics-transport.js';
import { NatsServer } from '../harness/nats-server.js';
import { autoscalingSpec } from '../harness/autoscaling-spec-fixture.js';
import { isolated, silent } from '../adapters/transport/nats/nats-fixtures.js';

let server: NatsServer;
before(async () => {
  server = await NatsServer.start({ jetstream: true });
});
after(async () => {
  await server[Symbol.asyncDispose]();
});

const DEADLINE_MS = 20_000;
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const REPLICAS = ['iris-r0', 'iris-r1', 'iris-r2'];

test('decisions hold through a NATS outage (no scale-down on silence, metrics.unavailable) and resume after it', async (t) => {
  const o = isolated(server.url, { outboxMaxMessages: REPLICAS.length });
  await using replicas = new NatsMetricsTransport(o, silent, new ManualClock(0));
  await using daemon = new NatsMetricsTransport(o, silent, new ManualClock(0));
  await using bus = new NatsEventBus(o, silent, new ManualClock(0));
  await using watcher = new NatsEventBus(o, silent, new ManualClock(0));
  await Promise.all([replicas.start(), daemon.start(), bus.start(), watcher.start()]);

  const scheduler = new ReplayScheduler(0);
  const lastSeq = new Map<string, number>();
  const arrivals = daemon.samples$().subscribe((s) => lastSeq.set(s.replica, s.seq));
  const pipeline = new ScalingPipeline({ samples$: daemon.samples$(), scheduler });
  const spec = autoscalingSpec({
    minReplicas: 1,
    maxReplicas: 10,
    initReplicas: 3,
    targetReplicaConcurrency: 1,
    tickMs: 1000,
    windowMs: 3000,
    upscaleStabilizationPeriodMs: 0,
    downscaleStabilizationPeriodMs: 0,
    maxUpscaleFactor: 10,
  });
  const scaler = pipeline.upsertApi({ api: 'iris', spec, policy: new CortexScalingPolicy(), replicas: 3 });
  const ticks: ScalingTick[] = [];
  const events: EngineEvent[] = [];
  pipeline.ticks$.subscribe((t) => ticks.push(t));
  pipeline.events$.subscribe((e) => {
    events.push(e);
    bus.publish(e);
  });
  const overNats: EngineEvent[] = [];
  watcher.events$({ api: 'iris' }).subscribe((e) => overNats.push(e));
  await watcher.synced();
  await daemon.flush();
  pipeline.start();

  let seq = 0;
  /** One virtual second: every replica samples `inFlight`; when NATS is up, wait for the samples to arrive. */
  const second = async (k: number, inFlight: number, up: boolean): Promise<void> => {
    seq++;
    for (const replica of REPLICAS) {
      const s: MetricSample = {
        v: 1, api: 'iris', replica, revision: 'r1', seq, t: 1_763_900_000_000 + k * 1000, intervalMs: 1000,
        inFlight, inFlightMax: Math.ceil(inFlight), requests: { '2xx': 10, '4xx': 0, '5xx': 0 }, latencyMsSum: 50, ready: true,
      };
      replicas.publish(s);
    }
    if (up) await until(() => REPLICAS.every((r) => (lastSeq.get(r) ?? 0) >= seq), `samples of second ${k}`);
    scheduler.advanceTo(k * 1000);
  };

  // 1. Steady: 3 replicas × 1 in flight at target 1 ⇒ 3 replicas, no change.
  for (let k = 1; k <= 6; k++) await second(k, 1, true);
  assert.ok(ticks.length >= 5);
  assert.ok(ticks.every((t) => t.decision.valid && t.decision.desired === 3), 'steady at 3 before the outage');

  // 2. Outage: the server dies; replicas keep sampling (into their bounded outbox), nothing arrives.
  await server.stop();
  await until(() => !replicas.connected && !daemon.connected, 'both sides to notice the outage');
  const outageFrom = ticks.length;
  for (let k = 7; k <= 16; k++) await second(k, 1, false);
  const outage = ticks.slice(outageFrom);
  assert.equal(outage.length, 10);
  assert.ok(outage.every((t) => t.decision.desired === 3), `held at 3 during the outage, got ${outage.map((t) => t.decision.desired)}`);
  assert.ok(outage.some((t) => !t.decision.valid), 'the silence is reported as missing metrics');
  assert.deepEqual(events.filter((e) => e.type === 'metrics.unavailable').map((e) => e.t), [outage.find((t) => !t.decision.valid)!.atMs]);
  assert.equal(events.filter((e) => e.type === 'scaling.decided').length, 0);
  assert.equal(replicas.queued, REPLICAS.length, 'the replicas hold only their bounded outbox');

  // 3. Back: load doubles to 2 per replica ⇒ scale to 6 once the window sees it.
  await server.restart();
  await Promise.all([replicas.whenConnected(), daemon.whenConnected(), bus.whenConnected(), watcher.whenConnected()]);
  await daemon.flush();
  const backFrom = ticks.length;
  for (let k = 17; k <= 24; k++) await second(k, 2, true);
  const back = ticks.slice(backFrom);
  assert.ok(back.every((t) => t.decision.valid), 'metrics valid again after the restart');
  assert.ok(back.every((t) => t.decision.desired >= 3), 'never below 3');
  assert.equal(back[back.length - 1].decision.desired, 6, `scaled to 6, got ${back.map((t) => t.decision.desired)}`);
  assert.equal(scaler.currentReplicas(), 6);
  const decided = events.filter((e) => e.type === 'scaling.decided');
  assert.ok(decided.length >= 1 && decided.every((e) => e.type === 'scaling.decided' && e.to > e.from), 'only scale-ups');

  // The events, the outage's metrics.unavailable included, reached a NATS subscriber in order.
  await until(() => overNats.length === events.length, 'the events over NATS');
  assert.deepEqual(overNats, events);

  t.diagnostic(`ticks: ${ticks.map((x) => `${x.atMs / 1000}:${x.decision.valid ? x.decision.desired : 'hold'}`).join(' ')}`);
  arrivals.unsubscribe();
  pipeline.close();
});
