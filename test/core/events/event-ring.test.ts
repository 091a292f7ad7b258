import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EventRing } from '../../../core/events/event-ring.js';

interface Entry {
  readonly t: number;
  readonly api?: string;
}

/** `a@3` is an entry of API `a` at t = 3; a bare `3` has no API. */
const entry = (s: string): Entry => {
  const [api, t] = s.includes('@') ? s.split('@') : [undefined, s];
  return api === undefined ? { t: Number(t) } : { api, t: Number(t) };
};
const show = (es: readonly Entry[]): string[] => es.map((e) => (e.api === undefined ? `${e.t}` : `${e.api}@${e.t}`));

describe('EventRing', () => {
  interface Case {
    readonly name: string;
    readonly capacity: number;
    readonly push: readonly string[];
    readonly sinceMs: number;
    readonly api?: string;
    readonly want: readonly string[];
    readonly wantSize: number;
  }
  const cases: Case[] = [
    { name: 'empty ⇒ nothing', capacity: 3, push: [], sinceMs: 0, want: [], wantSize: 0 },
    { name: 'below capacity keeps all, oldest first', capacity: 3, push: ['1', '2'], sinceMs: 0, want: ['1', '2'], wantSize: 2 },
    { name: 'exactly full keeps all', capacity: 3, push: ['1', '2', '3'], sinceMs: 0, want: ['1', '2', '3'], wantSize: 3 },
    { name: 'wraparound: 5 into 3 keeps the newest 3', capacity: 3, push: ['1', '2', '3', '4', '5'], sinceMs: 0, want: ['3', '4', '5'], wantSize: 3 },
    { name: 'wraparound twice over: 7 into 3', capacity: 3, push: ['1', '2', '3', '4', '5', '6', '7'], sinceMs: 0, want: ['5', '6', '7'], wantSize: 3 },
    { name: 'since is inclusive', capacity: 10, push: ['10', '20', '30'], sinceMs: 20, want: ['20', '30'], wantSize: 3 },
    { name: 'since after everything ⇒ nothing', capacity: 10, push: ['10', '20'], sinceMs: 21, want: [], wantSize: 2 },
    { name: 'filter by api', capacity: 10, push: ['a@1', 'b@2', 'a@3'], sinceMs: 0, api: 'a', want: ['a@1', 'a@3'], wantSize: 3 },
    { name: 'filter by t and api', capacity: 10, push: ['a@1', 'b@2', 'a@3', 'a@2'], sinceMs: 2, api: 'a', want: ['a@3', 'a@2'], wantSize: 4 },
    { name: 'unknown api ⇒ nothing', capacity: 10, push: ['a@1', 'b@2'], sinceMs: 0, api: 'c', want: [], wantSize: 2 },
    { name: 'an entry without api never matches an api filter', capacity: 10, push: ['1', 'a@2'], sinceMs: 0, api: 'a', want: ['a@2'], wantSize: 2 },
    { name: 'push order, not t order: an older t pushed later stays later', capacity: 10, push: ['5', '1', '3'], sinceMs: 0, want: ['5', '1', '3'], wantSize: 3 },
    { name: 'order after overwrite keeps push order across the seam', capacity: 3, push: ['a@1', 'b@2', 'a@3', 'b@4', 'a@5'], sinceMs: 0, want: ['a@3', 'b@4', 'a@5'], wantSize: 3 },
    { name: 'filter after overwrite: dropped entries never come back', capacity: 3, push: ['a@1', 'b@2', 'a@3', 'b@4', 'a@5'], sinceMs: 0, api: 'a', want: ['a@3', 'a@5'], wantSize: 3 },
    { name: 'capacity 1 keeps only the last', capacity: 1, push: ['1', '2', '3'], sinceMs: 0, want: ['3'], wantSize: 1 },
    { name: 'capacity 1, last filtered out by t', capacity: 1, push: ['5', '2'], sinceMs: 3, want: [], wantSize: 1 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const ring = new EventRing<Entry>(c.capacity);
      for (const s of c.push) ring.push(entry(s));
      const got = show(ring.since(c.sinceMs, c.api));
      assert.deepEqual(got, c.want, `want ${JSON.stringify(c.want)} got ${JSON.stringify(got)}`);
      assert.equal(ring.size, c.wantSize, `size: want ${c.wantSize} got ${ring.size}`);
      assert.equal(ring.capacity, c.capacity);
    });
  }

  test('since returns a snapshot: pushing while iterating does not change it', () => {
    const ring = new EventRing<Entry>(2);
    ring.push({ t: 1 });
    ring.push({ t: 2 });
    const got: number[] = [];
    for (const e of ring.since(0)) {
      got.push(e.t);
      ring.push({ t: e.t + 10 });
    }
    assert.deepEqual(got, [1, 2]);
    assert.deepEqual(show(ring.since(0)), ['11', '12']);
  });

  const invalid = [0, -1, 2.5, Number.NaN, Number.POSITIVE_INFINITY];
  for (const capacity of invalid) {
    test(`refuses capacity ${capacity} with a RangeError`, () => {
      assert.throws(() => new EventRing<Entry>(capacity), RangeError);
    });
  }
});
