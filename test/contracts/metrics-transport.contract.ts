/**
 * The contract every MetricsTransport kind passes (SG 5.2). A fixture gives a publishing side and a
 * subscribing side (one transport or two connected ones), a way to put a bad message on the wire as a
 * peer would, and `synced()`, which resolves once subscriptions made so far are effective end to end.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { firstValueFrom, type Observable, take, timeout, toArray } from 'rxjs';
import type { MetricSample } from '../../core/metrics/metric-sample.js';
import type { MetricsTransport } from '../../core/ports/metrics-transport.js';

export interface MetricsTransportFixture extends AsyncDisposable {
  readonly publisher: MetricsTransport;
  readonly subscriber: MetricsTransport;
  /** Resolves when every subscription made so far receives what is published from now on. */
  synced(): Promise<void>;
  /** Delivers a message to the subscriber as a misbehaving peer would (bad JSON, too big, off-schema). */
  injectBad(kind: 'malformed' | 'oversized' | 'invalid', api: string): Promise<void>;
}

/** How long a test waits for samples before it fails (a deadline, not a measurement). */
const DEADLINE_MS = 10_000;

export function sample(api: string, seq: number, over: Partial<MetricSample> = {}): MetricSample {
  return {
    v: 1,
    api,
    replica: `${api}-r1`,
    revision: 'rev1',
    seq,
    t: 1_763_900_000_000 + seq * 1000,
    intervalMs: 1000,
    inFlight: seq % 7,
    inFlightMax: (seq % 7) + 1,
    requests: { '2xx': seq, '4xx': 0, '5xx': 0 },
    latencyMsSum: seq * 2.5,
    ready: true,
    ...over,
  };
}

function collect(o: Observable<MetricSample>, n: number): Promise<MetricSample[]> {
  return firstValueFrom(o.pipe(take(n), timeout({ first: DEADLINE_MS, each: DEADLINE_MS }), toArray()));
}

export function describeMetricsTransportContract(name: string, create: () => Promise<MetricsTransportFixture>): void {
  describe(`MetricsTransport contract: ${name}`, () => {
    test('delivers a published sample unchanged, to the API subscription and to the all-APIs one', async () => {
      await using f = await create();
      const one = collect(f.subscriber.samples$('iris'), 1);
      const all = collect(f.subscriber.samples$(), 1);
      await f.synced();
      const want = sample('iris', 1, { cpuUtilization: 0.5, monitoring: { modelType: 'classification', classes: { setosa: 2 } } });
      f.publisher.publish(want);
      assert.deepEqual(await one, [want]);
      assert.deepEqual(await all, [want]);
    });

    test('samples$(api) carries only that API', async () => {
      await using f = await create();
      const iris = collect(f.subscriber.samples$('iris'), 3);
      await f.synced();
      for (let i = 1; i <= 3; i++) {
        f.publisher.publish(sample('other', i));
        f.publisher.publish(sample('iris', i));
      }
      const got = await iris;
      assert.deepEqual(got.map((s) => `${s.api}#${s.seq}`), ['iris#1', 'iris#2', 'iris#3']);
    });

    test('keeps one replica’s samples in order', async () => {
      await using f = await create();
      const n = 300;
      const got = collect(f.subscriber.samples$('iris'), n);
      await f.synced();
      for (let i = 1; i <= n; i++) f.publisher.publish(sample('iris', i));
      assert.deepEqual((await got).map((s) => s.seq), Array.from({ length: n }, (_, i) => i + 1));
    });

    test('is hot: a subscriber gets only what is published after it subscribed', async () => {
      await using f = await create();
      const early = collect(f.subscriber.samples$('iris'), 1);
      await f.synced();
      f.publisher.publish(sample('iris', 1));
      assert.deepEqual((await early).map((s) => s.seq), [1]);
      const late = collect(f.subscriber.samples$('iris'), 1);
      await f.synced();
      f.publisher.publish(sample('iris', 2));
      assert.deepEqual((await late).map((s) => s.seq), [2]);
    });

    test('refuses an invalid sample at publish: counted, not delivered, the stream goes on', async () => {
      await using f = await create();
      const got = collect(f.subscriber.samples$('iris'), 1);
      await f.synced();
      const before = f.publisher.stats().invalid;
      f.publisher.publish({ ...sample('iris', 1), inFlight: -1 });
      f.publisher.publish({ ...sample('iris', 2), extra: true } as unknown as MetricSample);
      f.publisher.publish(sample('iris', 3));
      assert.deepEqual((await got).map((s) => s.seq), [3]);
      assert.equal(f.publisher.stats().invalid - before, 2);
    });

    for (const kind of ['malformed', 'oversized', 'invalid'] as const) {
      test(`drops a ${kind} message from a peer: counted, not delivered, the stream goes on`, async () => {
        await using f = await create();
        const got = collect(f.subscriber.samples$('iris'), 2);
        await f.synced();
        f.publisher.publish(sample('iris', 1));
        await f.injectBad(kind, 'iris');
        f.publisher.publish(sample('iris', 2));
        assert.deepEqual((await got).map((s) => s.seq), [1, 2]);
        assert.equal(f.subscriber.stats().invalid, 1);
      });
    }

    test('counts what it published and received', async () => {
      await using f = await create();
      const n = 25;
      const got = collect(f.subscriber.samples$(), n);
      await f.synced();
      for (let i = 1; i <= n; i++) f.publisher.publish(sample('iris', i));
      await got;
      assert.equal(f.publisher.stats().published, n);
      assert.ok(f.subscriber.stats().received >= n, `received: want >= ${n}, got ${f.subscriber.stats().received}`);
      assert.equal(f.subscriber.stats().invalid, 0);
      assert.equal(f.publisher.stats().dropped, 0);
    });

    test('an unsubscribed subscriber gets nothing more; a new one gets the next samples', async () => {
      await using f = await create();
      const seen: number[] = [];
      const sub = f.subscriber.samples$('iris').subscribe((s) => seen.push(s.seq));
      await f.synced();
      const first = collect(f.subscriber.samples$('iris'), 1);
      f.publisher.publish(sample('iris', 1));
      await first;
      sub.unsubscribe();
      const next = collect(f.subscriber.samples$('iris'), 1);
      await f.synced();
      f.publisher.publish(sample('iris', 2));
      assert.deepEqual((await next).map((s) => s.seq), [2]);
      assert.deepEqual(seen, [1]);
    });

    test('close() completes samples$ and later publishes neither throw nor deliver', async () => {
      await using f = await create();
      let completed = false;
      f.subscriber.samples$('iris').subscribe({ complete: () => (completed = true) });
      await f.subscriber.close();
      assert.equal(completed, true);
      await f.publisher.close();
      assert.doesNotThrow(() => f.publisher.publish(sample('iris', 1)));
    });
  });
}
