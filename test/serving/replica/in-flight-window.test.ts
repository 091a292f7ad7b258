import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InFlightWindow } from '../../../serving/replica/in-flight-window.js';

const cases = [
  {
    name: 'the doc example: 0 for 500 ms, 4 for 250, 2 for 250',
    steps: [[500, 4], [750, 2]] as const,
    cutAt: 1000,
    want: { mean: 1.5, max: 4, intervalMs: 1000 },
  },
  { name: 'idle interval', steps: [] as const, cutAt: 1000, want: { mean: 0, max: 0, intervalMs: 1000 } },
  {
    name: 'a spike inside one millisecond still shows in max',
    steps: [[100, 5], [100, 0]] as const,
    cutAt: 1000,
    want: { mean: 0, max: 5, intervalMs: 1000 },
  },
  { name: 'zero-length interval reports the current value', steps: [[0, 3]] as const, cutAt: 0, want: { mean: 3, max: 3, intervalMs: 0 } },
];
for (const c of cases) {
  test(`in-flight window: ${c.name}`, () => {
    const w = new InFlightWindow(0);
    for (const [t, v] of c.steps) w.record(t, v);
    assert.deepEqual(w.cut(c.cutAt), c.want);
  });
}

test('the next interval starts from the value in flight at the cut', () => {
  const w = new InFlightWindow(1000);
  w.record(1500, 2);
  assert.deepEqual(w.cut(2000), { mean: 1, max: 2, intervalMs: 1000 });
  w.record(2500, 0);
  assert.deepEqual(w.cut(3000), { mean: 1, max: 2, intervalMs: 1000 });
  assert.deepEqual(w.cut(4000), { mean: 0, max: 0, intervalMs: 1000 });
});
