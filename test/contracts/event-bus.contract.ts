/**
 * The contract every EventBus kind passes (SG 5.2). `replay` says whether the kind keeps history for
 * `events$({ sinceMs })` (local always; nats only when the server has JetStream).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { firstValueFrom, type Observable, take, timeout, toArray } from 'rxjs';
import type { EngineEvent } from '../../core/events/engine-event.js';
import type { EventBus } from '../../core/ports/event-bus.js';

export interface EventBusFixture extends AsyncDisposable {
  readonly publisher: EventBus;
  readonly subscriber: EventBus;
  readonly replay: boolean;
  /** Resolves when every subscription made so far receives what is published from now on. */
  synced(): Promise<void>;
  /** Resolves when everything published so far is retained for replay (no-op without replay). */
  stored(): Promise<void>;
  /** Delivers a bad message to the subscriber as a misbehaving peer would. */
  injectBad(kind: 'malformed' | 'oversized' | 'invalid', api: string): Promise<void>;
}

const DEADLINE_MS = 10_000;

export function statusEvent(api: string, t: number, status = `s${t}`): EngineEvent {
  return { v: 1, type: 'api.status', api, t, status };
}

function collect(o: Observable<EngineEvent>, n: number): Promise<EngineEvent[]> {
  return firstValueFrom(o.pipe(take(n), timeout({ first: DEADLINE_MS, each: DEADLINE_MS }), toArray()));
}
const ts = (es: readonly EngineEvent[]): string[] => es.map((e) => `${e.api}@${e.t}`);

export function describeEventBusContract(name: string, create: () => Promise<EventBusFixture>): void {
  describe(`EventBus contract: ${name}`, () => {
    test('delivers a published event unchanged to live subscribers', async () => {
      await using f = await create();
      const got = collect(f.subscriber.events$(), 1);
      const forApi = collect(f.subscriber.events$({ api: 'iris' }), 1);
      await f.synced();
      const want: EngineEvent = {
        v: 1,
        type: 'scaling.decided',
        api: 'iris',
        t: 1000,
        from: 1,
        to: 3,
        policy: 'cortex',
        avgInFlight: 25,
        target: 10,
        raw: 2.5,
        recommendation: 3,
        reason: 'load',
      };
      f.publisher.publish(want);
      assert.deepEqual(await got, [want]);
      assert.deepEqual(await forApi, [want]);
    });

    test('events$({ api }) carries only that API, in order', async () => {
      await using f = await create();
      const got = collect(f.subscriber.events$({ api: 'iris' }), 3);
      await f.synced();
      for (let t = 1; t <= 3; t++) {
        f.publisher.publish(statusEvent('other', t));
        f.publisher.publish(statusEvent('iris', t));
      }
      assert.deepEqual(ts(await got), ['iris@1', 'iris@2', 'iris@3']);
    });

    test('refuses an invalid event at publish: counted, not delivered', async () => {
      await using f = await create();
      const got = collect(f.subscriber.events$(), 1);
      await f.synced();
      f.publisher.publish({ v: 1, type: 'api.status', api: 'Bad Name', t: 1, status: 'x' });
      f.publisher.publish(statusEvent('iris', 2));
      assert.deepEqual(ts(await got), ['iris@2']);
      assert.equal(f.publisher.stats().invalid, 1);
    });

    for (const kind of ['malformed', 'oversized', 'invalid'] as const) {
      test(`drops a ${kind} message from a peer: counted, not delivered, the stream goes on`, async () => {
        await using f = await create();
        const got = collect(f.subscriber.events$({ api: 'iris' }), 2);
        await f.synced();
        f.publisher.publish(statusEvent('iris', 1));
        await f.injectBad(kind, 'iris');
        f.publisher.publish(statusEvent('iris', 2));
        assert.deepEqual(ts(await got), ['iris@1', 'iris@2']);
        assert.equal(f.subscriber.stats().invalid, 1);
      });
    }

    test('sinceMs: replays retained events with t >= sinceMs, then follows live ones, without duplicates', async (t) => {
      await using f = await create();
      for (const e of [statusEvent('iris', 100), statusEvent('iris', 200), statusEvent('other', 250), statusEvent('iris', 300)]) f.publisher.publish(e);
      await f.stored();
      if (!f.replay) {
        t.diagnostic('this kind keeps no history: only live events are delivered');
        const got = collect(f.subscriber.events$({ api: 'iris', sinceMs: 200 }), 1);
        await f.synced();
        f.publisher.publish(statusEvent('iris', 400));
        assert.deepEqual(ts(await got), ['iris@400']);
        return;
      }
      const got = collect(f.subscriber.events$({ api: 'iris', sinceMs: 200 }), 3);
      const all = collect(f.subscriber.events$({ sinceMs: 0 }), 5);
      await f.synced();
      f.publisher.publish(statusEvent('iris', 400));
      assert.deepEqual(ts(await got), ['iris@200', 'iris@300', 'iris@400']);
      assert.deepEqual(ts(await all), ['iris@100', 'iris@200', 'other@250', 'iris@300', 'iris@400']);
    });

    test('close() completes events$ and later publishes neither throw nor deliver', async () => {
      await using f = await create();
      let completed = false;
      f.subscriber.events$().subscribe({ complete: () => (completed = true) });
      await f.subscriber.close();
      assert.equal(completed, true);
      await f.publisher.close();
      assert.doesNotThrow(() => f.publisher.publish(statusEvent('iris', 1)));
    });
  });
}
