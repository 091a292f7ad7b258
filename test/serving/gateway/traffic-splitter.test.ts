// Smooth weighted round robin (serving/gateway/traffic-splitter.ts): exact shares over whole cycles,
// every prefix within one request of its ideal share, runs spread out, skipped backends.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SmoothWeightedRoundRobin, TrafficSplitterRoute } from '../../../serving/gateway/traffic-splitter.js';

const all = (): boolean => true;

describe('SmoothWeightedRoundRobin', () => {
  const cases: { name: string; weights: number[] }[] = [
    { name: '30/70', weights: [30, 70] },
    { name: '50/50', weights: [50, 50] },
    { name: '1/99', weights: [1, 99] },
    { name: '20/30/50', weights: [20, 30, 50] },
    { name: '33/33/34', weights: [33, 33, 34] },
    { name: '0/100 (weight 0 never picked)', weights: [0, 100] },
    { name: '10/0/90', weights: [10, 0, 90] },
  ];
  for (const c of cases) {
    test(`${c.name}: exact counts over 1000 picks, each prefix within 1 of its share`, () => {
      const rr = new SmoothWeightedRoundRobin(c.weights);
      const total = c.weights.reduce((a, b) => a + b, 0);
      const got = c.weights.map(() => 0);
      for (let n = 1; n <= 1000; n++) {
        got[rr.pick(all)]++;
        for (let i = 0; i < c.weights.length; i++) {
          const ideal = (n * c.weights[i]) / total;
          assert.ok(Math.abs(got[i] - ideal) < 1, `after ${n} picks backend ${i} has ${got[i]}, ideal ${ideal}`);
        }
      }
      assert.deepEqual(got, c.weights.map((w) => (w * 1000) / total), `want ${c.weights.map((w) => w * 10)}, got ${got}`);
    });
  }

  test('30/70: the first ten picks as documented (b a b b a b b b a b), never two a in a row', () => {
    const rr = new SmoothWeightedRoundRobin([30, 70]);
    const got = Array.from({ length: 10 }, () => 'ab'[rr.pick(all)]).join(' ');
    assert.equal(got, 'b a b b a b b b a b');
  });

  test('a backend that is not eligible is skipped: every pick goes to the others, the shares resume after', () => {
    const rr = new SmoothWeightedRoundRobin([30, 70]);
    const got = [0, 0];
    for (let n = 0; n < 100; n++) got[rr.pick(all)]++;
    for (let n = 0; n < 100; n++) got[rr.pick((i) => i !== 0)]++;
    assert.deepEqual(got, [30, 170], 'the second 100 all went to backend 1');
    for (let n = 0; n < 100; n++) got[rr.pick(all)]++;
    assert.deepEqual(got, [60, 240]);
  });

  test('no eligible backend with a weight: -1 and no state change', () => {
    const rr = new SmoothWeightedRoundRobin([0, 100]);
    assert.equal(rr.pick((i) => i === 0), -1);
    assert.equal(rr.pick(all), 1);
  });
});

describe('TrafficSplitterRoute', () => {
  test('falls back to every backend by weight when none is ready, and counts what each got', () => {
    const route = new TrafficSplitterRoute({ name: 's', apis: [{ name: 'a', weight: 30 }, { name: 'b', weight: 70 }], networking: { endpoint: '/s' } }, null);
    const ready = new Set(['b']);
    const got: Record<string, number> = { a: 0, b: 0 };
    for (let n = 0; n < 10; n++) got[route.pick((x) => ready.has(x)) as string]++;
    assert.deepEqual({ ...got }, { a: 0, b: 10 });
    ready.clear();
    for (let n = 0; n < 10; n++) got[route.pick((x) => ready.has(x)) as string]++;
    const stats = route.stats((x) => ready.has(x));
    assert.equal(stats.requests, 20);
    assert.deepEqual(
      stats.backends.map((b) => [b.name, b.requests, b.ready]),
      [
        ['a', got.a, false],
        ['b', got.b, false],
      ],
    );
    assert.ok(got.a > 0, `with nothing ready a gets its turns too (got ${got.a})`);
  });
});
