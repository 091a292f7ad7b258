/**
 * NATS outages with a real nats-server (JetStream, file store) killed with SIGKILL and restarted on the
 * same port mid-stream: publishing buffers a bounded amount and drops the oldest, subscriptions resume,
 * and the counts add up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { firstValueFrom, take, timeout, toArray } from 'rxjs';
import { ManualClock } from '../../core/clock.js';
import type { EngineEvent } from '../../core/events/engine-event.js';
import type { MetricSample } from '../../core/metrics/metric-sample.js';
import { NatsEventBus } from '../../adapters/transport/nats/nats-event-bus.js';
import { NatsMetricsTransport } from '../../adapters/transport/nats/nats-metrics-transport.js';
import { NatsServer } from '../harness/nats-server.js';
import { statusEvent } from '../contracts/event-bus.contract.js';
import { sample } from '../contracts/metrics-transport.contract.js';
import { isolated, silent } from '../adapters/transport/nats/nats-fixtures.js';

let server: NatsServer;
before(async () => {
  server = await NatsServer.start({ jetstream: true });
});
after(async () => {
  await server[Symbol.asyncDispose]();
});

const DEADLINE_MS = 20_000;

/** Polls `cond` until it holds; fails after the deadline (a bound on waiting, not a measurement). */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('nats metrics through a server outage', () => {
  test('one transport: buffers the newest N during the outage, drops the rest oldest first, resumes; counts exact', async () => {
    const bound = 50;
    await using t = new NatsMetricsTransport(isolated(server.url, { outboxMaxMessages: bound }), silent, new ManualClock(0));
    await t.start();
    const seen: number[] = [];
    const sub = t.samples$('iris').subscribe((s) => seen.push(s.seq));
    await t.flush();

    for (const seq of range(1, 100)) t.publish(sample('iris', seq));
    await until(() => seen.length === 100, 'the first 100 samples');

    await server.stop();
    await until(() => !t.connected, 'the transport to notice the outage');
    let maxQueued = 0;
    for (const seq of range(101, 300)) {
      t.publish(sample('iris', seq));
      maxQueued = Math.max(maxQueued, t.queued);
    }
    assert.equal(maxQueued, bound, 'the outbox never holds more than its bound');
    assert.equal(t.stats().dropped, 150);

    await server.restart();
    await t.whenConnected();
    await until(() => seen.length === 150, 'the 50 buffered samples');
    for (const seq of range(301, 400)) t.publish(sample('iris', seq));
    await until(() => seen.length === 250, 'samples after the restart');
    sub.unsubscribe();

    assert.deepEqual(seen, [...range(1, 100), ...range(251, 300), ...range(301, 400)]);
    assert.deepEqual(t.stats(), { published: 250, received: 250, invalid: 0, dropped: 150 });
  });

  test('separate publisher and subscriber: the subscriber resumes after the restart; received <= published', async () => {
    const o = isolated(server.url, { outboxMaxMessages: 20 });
    await using pub = new NatsMetricsTransport(o, silent, new ManualClock(0));
    await using subT = new NatsMetricsTransport(o, silent, new ManualClock(0));
    await pub.start();
    await subT.start();
    const seen: MetricSample[] = [];
    const sub = subT.samples$().subscribe((s) => seen.push(s));
    await subT.flush();
    for (const seq of range(1, 30)) pub.publish(sample('iris', seq));
    await until(() => seen.length === 30, 'samples before the outage');

    await server.stop();
    await until(() => !pub.connected && !subT.connected, 'both to notice the outage');
    for (const seq of range(31, 130)) pub.publish(sample('iris', seq));
    assert.equal(pub.queued, 20);
    assert.equal(pub.stats().dropped, 80);

    await server.restart();
    await Promise.all([pub.whenConnected(), subT.whenConnected()]);
    await subT.flush();
    for (const seq of range(131, 160)) pub.publish(sample('iris', seq));
    // Samples flushed from the outbox before the subscriber was back are lost (core NATS, at most once);
    // everything published once both were connected arrives.
    await until(() => seen.some((s) => s.seq === 160), 'the last sample after the restart');
    sub.unsubscribe();
    const seqs = seen.map((s) => s.seq);
    assert.deepEqual(seqs.filter((s) => s > 130), range(131, 160));
    assert.ok(seqs.every((s) => s <= 30 || s > 110), 'only the newest 20 of the outage can have been kept');
    assert.deepEqual([...seqs].sort((a, b) => a - b), seqs, 'in order');
    assert.equal(pub.stats().published, 30 + 20 + 30);
    assert.ok(subT.stats().received <= pub.stats().published);
    assert.equal(subT.stats().invalid, 0);
  });

  test('first connection failing: start() returns, publishes queue, everything goes out once the server is up', async () => {
    await server.stop();
    await using t = new NatsMetricsTransport(isolated(server.url), silent, new ManualClock(0));
    await t.start();
    assert.equal(t.connected, false);
    const got = firstValueFrom(t.samples$('iris').pipe(take(5), timeout(DEADLINE_MS), toArray()));
    for (const seq of range(1, 5)) t.publish(sample('iris', seq));
    assert.equal(t.queued, 5);
    await server.restart();
    await t.whenConnected();
    assert.deepEqual((await got).map((s) => s.seq), range(1, 5));
    assert.equal(t.stats().dropped, 0);
  });

  test('a long outage keeps memory bounded: 20 000 publishes, 1 000 kept', async () => {
    await using t = new NatsMetricsTransport(isolated(server.url, { outboxMaxMessages: 1000 }), silent, new ManualClock(0));
    await t.start();
    await server.stop();
    await until(() => !t.connected, 'the outage');
    for (const seq of range(1, 20_000)) t.publish(sample('iris', seq));
    assert.equal(t.queued, 1000);
    assert.equal(t.stats().dropped, 19_000);
    await server.restart();
    await t.whenConnected();
    assert.equal(t.queued, 0);
    assert.equal(t.stats().published, 1000);
  });
});

describe('nats events through a server outage (JetStream)', () => {
  test('a following subscriber misses nothing: events queued during the outage are stored and delivered after it', async () => {
    const o = isolated(server.url);
    await using pub = new NatsEventBus(o, silent, new ManualClock(0));
    await using subBus = new NatsEventBus(o, silent, new ManualClock(0));
    await pub.start();
    await subBus.start();
    assert.equal(subBus.replayAvailable, true);
    const seen: EngineEvent[] = [];
    const sub = subBus.events$({ api: 'iris' }).subscribe((e) => seen.push(e));
    await subBus.synced();
    for (const t of range(1, 10)) pub.publish(statusEvent('iris', t));
    await until(() => seen.length === 10, 'events before the outage');

    await server.stop();
    await until(() => !pub.connected, 'the outage');
    for (const t of range(11, 20)) pub.publish(statusEvent('iris', t));
    await server.restart();
    await pub.whenConnected();
    for (const t of range(21, 30)) pub.publish(statusEvent('iris', t));
    await until(() => seen.length >= 30, 'all 30 events');
    sub.unsubscribe();
    assert.deepEqual(seen.map((e) => e.t), range(1, 30));
    assert.equal(pub.stats().dropped, 0);
  });

  test('replay from sinceMs after a restart: the stream kept the events on disk', async () => {
    const o = isolated(server.url);
    await using pub = new NatsEventBus(o, silent, new ManualClock(0));
    await pub.start();
    for (const t of range(1, 20)) pub.publish(statusEvent(t % 2 ? 'iris' : 'other', t * 100));
    await pub.stored();
    await server.restart();
    await pub.whenConnected();
    await using reader = new NatsEventBus(o, silent, new ManualClock(0));
    await reader.start();
    const got = await firstValueFrom(reader.events$({ api: 'iris', sinceMs: 1000 }).pipe(take(5), timeout(DEADLINE_MS), toArray()));
    assert.deepEqual(got.map((e) => e.t), [1100, 1300, 1500, 1700, 1900]);
  });
});
