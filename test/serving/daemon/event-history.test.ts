import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { EngineEvent } from '../../../core/events/engine-event.js';
import { EventHistory } from '../../../serving/daemon/event-history.js';

const ev = (api: string, t: number): EngineEvent => ({ v: 1, type: 'api.deleted', api, t });
const ts = (es: readonly EngineEvent[]): string[] => es.map((e) => `${e.api}@${e.t}`);

describe('EventHistory', () => {
  test('since: retained events at or after sinceMs, of one API when asked, oldest first', () => {
    const h = new EventHistory();
    for (const e of [ev('a', 1), ev('b', 2), ev('a', 3), ev('a', 2)]) h.record(e);
    const cases = [
      { since: 0, api: undefined, want: ['a@1', 'b@2', 'a@3', 'a@2'] },
      { since: 2, api: undefined, want: ['b@2', 'a@3', 'a@2'] },
      { since: 2, api: 'a', want: ['a@3', 'a@2'] },
      { since: 4, api: undefined, want: [] },
      { since: 0, api: 'c', want: [] },
    ];
    for (const c of cases) assert.deepEqual(ts(h.since(c.since, c.api)), c.want, `since ${c.since} api ${c.api}`);
  });

  test('keeps the newest `capacity` events', () => {
    const h = new EventHistory(3);
    for (let t = 1; t <= 5; t++) h.record(ev('a', t));
    assert.deepEqual(ts(h.since(0)), ['a@3', 'a@4', 'a@5']);
  });

  test('follow: replays since sinceMs, then live ones of the API; no replay without sinceMs', () => {
    const h = new EventHistory();
    h.record(ev('a', 1));
    h.record(ev('b', 2));
    const replayed: EngineEvent[] = [];
    const live: EngineEvent[] = [];
    const s1 = h.follow(0, 'a').subscribe((e) => replayed.push(e));
    const s2 = h.follow(undefined).subscribe((e) => live.push(e));
    h.record(ev('a', 3));
    h.record(ev('b', 4));
    assert.deepEqual(ts(replayed), ['a@1', 'a@3']);
    assert.deepEqual(ts(live), ['a@3', 'b@4']);
    s1.unsubscribe();
    h.record(ev('a', 5));
    assert.deepEqual(ts(replayed), ['a@1', 'a@3']);
    s2.unsubscribe();
  });

  test('after complete, events are still retained but no longer delivered live (followers are not completed)', () => {
    const h = new EventHistory();
    const live: EngineEvent[] = [];
    let done = false;
    h.follow(undefined).subscribe({ next: (e) => live.push(e), complete: () => (done = true) });
    h.complete();
    h.record(ev('a', 1));
    assert.deepEqual(live, []);
    assert.equal(done, false);
    assert.deepEqual(ts(h.since(0)), ['a@1']);
  });
});
