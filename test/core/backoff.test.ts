import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelayMs, withJitterMs } from '../../core/backoff.js';

const delays: ReadonlyArray<{ name: string; failures: number; baseMs: number; maxMs: number; want: number }> = [
  { name: 'no failure yet', failures: 0, baseMs: 1000, maxMs: 30_000, want: 0 },
  // Kubernetes list-watch: retryMs 1 s, cap 30 s.
  { name: 'kube 1st', failures: 1, baseMs: 1000, maxMs: 30_000, want: 1000 },
  { name: 'kube 2nd', failures: 2, baseMs: 1000, maxMs: 30_000, want: 2000 },
  { name: 'kube 5th', failures: 5, baseMs: 1000, maxMs: 30_000, want: 16_000 },
  { name: 'kube 6th hits the cap', failures: 6, baseMs: 1000, maxMs: 30_000, want: 30_000 },
  { name: 'kube 10000th stays at the cap', failures: 10_000, baseMs: 1000, maxMs: 30_000, want: 30_000 },
  // NATS link: min 250 ms, max 5 s (its defaults); the first try counts as failure 1.
  { name: 'nats 1st', failures: 1, baseMs: 250, maxMs: 5000, want: 250 },
  { name: 'nats 3rd', failures: 3, baseMs: 250, maxMs: 5000, want: 1000 },
  { name: 'nats 5th', failures: 5, baseMs: 250, maxMs: 5000, want: 4000 },
  { name: 'nats 6th hits the cap', failures: 6, baseMs: 250, maxMs: 5000, want: 5000 },
  { name: 'zero base stays zero', failures: 2000, baseMs: 0, maxMs: 5000, want: 0 },
];
for (const c of delays) {
  test(`backoffDelayMs: ${c.name}`, () => {
    const got = backoffDelayMs(c.failures, c.baseMs, c.maxMs);
    assert.equal(got, c.want, `want ${c.want}, got ${got}`);
  });
}

const jitters: ReadonlyArray<{ name: string; delayMs: number; random: number; want: number }> = [
  { name: 'random 0 adds nothing', delayMs: 250, random: 0, want: 250 },
  { name: 'a quarter of a short delay, plus 1', delayMs: 250, random: 0.5, want: 281 },
  { name: 'short delay, largest random', delayMs: 250, random: 0.999_999, want: 313 },
  { name: 'long delay capped at 100 ms', delayMs: 5000, random: 0.999_999, want: 5099 },
  { name: 'zero delay gets under 1 ms, floored', delayMs: 0, random: 0.999_999, want: 0 },
];
for (const c of jitters) {
  test(`withJitterMs: ${c.name}`, () => {
    const got = withJitterMs(c.delayMs, c.random);
    assert.equal(got, c.want, `want ${c.want}, got ${got}`);
  });
}

test('the adapters get the numbers their own formulas gave before they used core/backoff', () => {
  // The formulas kube-list-watch.ts and nats-link.ts computed themselves, kept here as the reference.
  const oldKube = (failures: number, retryMs: number): number => Math.min(30_000, retryMs * 2 ** (failures - 1));
  const oldNats = (failedAttempts: number, min: number, max: number, r: number): number => {
    const base = Math.min(max, min * 2 ** Math.min(failedAttempts, 20));
    return base + Math.floor(r * Math.min(100, base / 4 + 1));
  };
  for (const retryMs of [1, 50, 1000, 7000]) {
    for (let failures = 1; failures <= 40; failures++) {
      assert.equal(backoffDelayMs(failures, retryMs, 30_000), oldKube(failures, retryMs), `kube retryMs ${retryMs}, failure ${failures}`);
    }
  }
  for (const [min, max] of [[250, 5000], [10, 200], [100, 60_000]]) {
    for (let attempts = 0; attempts <= 20; attempts++) {
      for (const r of [0, 0.25, 0.5, 0.999_999]) {
        assert.equal(withJitterMs(backoffDelayMs(attempts + 1, min, max), r), oldNats(attempts, min, max, r), `nats ${min}..${max}, attempt ${attempts}, random ${r}`);
      }
    }
  }
});
