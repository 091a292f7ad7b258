import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CrashWindow, backoffDelayMs } from '../../../../adapters/orchestrators/local/crash-backoff.js';

const delays: readonly { crashes: number; want: number }[] = [
  { crashes: 0, want: 0 },
  { crashes: 1, want: 1000 },
  { crashes: 2, want: 2000 },
  { crashes: 3, want: 4000 },
  { crashes: 5, want: 16_000 },
  { crashes: 6, want: 30_000 },
  { crashes: 1000, want: 30_000 },
];
for (const c of delays) {
  test(`backoffDelayMs: ${c.crashes} crashes → ${c.want} ms (base 1 s, cap 30 s)`, () => {
    assert.equal(backoffDelayMs(c.crashes, 1000, 30_000), c.want);
  });
}

test('CrashWindow counts crashes inside the window only and says when the oldest leaves', () => {
  const w = new CrashWindow(10_000);
  assert.equal(w.count(0), 0);
  assert.equal(w.nextExpiryMs(0), undefined);
  w.record(1000);
  w.record(4000);
  w.record(9000);
  assert.equal(w.count(9000), 3);
  assert.equal(w.nextExpiryMs(9000), 11_000);
  assert.equal(w.count(11_000), 2, 'the crash at 1000 left the window at 11000');
  assert.equal(w.nextExpiryMs(11_000), 14_000);
  assert.equal(w.count(19_000), 0);
});

test('CrashWindow keeps at most maxKept times', () => {
  const w = new CrashWindow(1_000_000, 4);
  for (let t = 0; t < 10; t++) w.record(t);
  assert.equal(w.count(10), 4);
});
