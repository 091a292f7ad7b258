import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TimeWeightedWindow } from '../../../core/metrics/time-weighted-window.js';

interface Case {
  readonly name: string;
  readonly records: readonly (readonly [number, number | null])[];
  readonly nowMs: number;
  readonly windowMs: number;
  readonly want: number | null;
}

const cases: Case[] = [
  { name: 'nothing recorded ⇒ null', records: [], nowMs: 10, windowMs: 10, want: null },
  { name: 'constant over the whole window', records: [[0, 4]], nowMs: 60, windowMs: 60, want: 4 },
  { name: 'step inside the window is time-weighted: (4 × 50 + 10 × 10) / 60', records: [[0, 4], [50, 10]], nowMs: 60, windowMs: 60, want: 5 },
  { name: 'only the covered part counts after a start', records: [[30, 6]], nowMs: 60, windowMs: 60, want: 6 },
  { name: 'unknown stretches are left out, not zero', records: [[0, 8], [20, null], [40, 2]], nowMs: 60, windowMs: 60, want: 5 },
  { name: 'all unknown ⇒ null', records: [[0, 3], [10, null]], nowMs: 60, windowMs: 40, want: null },
  { name: 'window start in the middle of a segment', records: [[0, 2], [45, 4]], nowMs: 60, windowMs: 30, want: 3 },
  { name: 'a value recorded at now contributes nothing yet', records: [[0, 2], [60, 100]], nowMs: 60, windowMs: 60, want: 2 },
  { name: 'same-ms records overwrite', records: [[0, 1], [10, 5], [10, 3]], nowMs: 20, windowMs: 20, want: 2 },
  { name: 'a point exactly at the window start bounds it', records: [[0, 100], [40, 1]], nowMs: 100, windowMs: 60, want: 1 },
  { name: '(now − window, now]: the older value still covers (40, 41]', records: [[0, 100], [41, 1]], nowMs: 100, windowMs: 60, want: (100 * 1 + 1 * 59) / 60 },
];

for (const c of cases) {
  test(`TimeWeightedWindow: ${c.name}`, () => {
    const w = new TimeWeightedWindow(c.windowMs, 2);
    for (const [t, v] of c.records) w.record(t, v);
    const got = w.average(c.nowMs, c.windowMs);
    if (c.want === null || got === null) assert.equal(got, c.want);
    else assert.ok(Math.abs(got - c.want) < 1e-12, `want ${c.want} got ${got}`);
  });
}

test('TimeWeightedWindow: memory stays bounded by the changes within the longest window', () => {
  const w = new TimeWeightedWindow(60_000, 4);
  for (let t = 0; t < 1_000_000; t += 100) w.record(t, (t / 100) % 7);
  assert.ok(w.points() <= 601 + 1, `points ${w.points()}`);
  // Mean of 0..6 repeating, each held 100 ms, over 60 s = 3 (600 segments, a multiple of 7? no: check exactly).
  let want = 0;
  for (let t = 1_000_000 - 60_000; t < 1_000_000; t += 100) want += (t / 100) % 7;
  want /= 600;
  const got = w.average(1_000_000, 60_000) as number;
  assert.ok(Math.abs(got - want) < 1e-9, `want ${want} got ${got}`);
});

test('TimeWeightedWindow: unchanged values add no points', () => {
  const w = new TimeWeightedWindow(1000);
  for (let t = 0; t < 100; t++) w.record(t, 5);
  assert.equal(w.points(), 1);
  assert.equal(w.latest(), 5);
  w.record(100, null);
  assert.equal(w.latest(), null);
});
