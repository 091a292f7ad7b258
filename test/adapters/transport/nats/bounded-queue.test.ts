import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BoundedQueue } from '../../../../adapters/transport/nats/bounded-queue.js';

describe('BoundedQueue', () => {
  const cases = [
    { name: 'keeps everything under the bounds', maxItems: 5, maxBytes: 100, push: [[1, 10], [2, 10], [3, 10]], want: [1, 2, 3], wantDropped: 0 },
    { name: 'drops the oldest beyond the item bound', maxItems: 3, maxBytes: 1000, push: [[1, 1], [2, 1], [3, 1], [4, 1], [5, 1]], want: [3, 4, 5], wantDropped: 2 },
    { name: 'drops the oldest beyond the byte bound', maxItems: 100, maxBytes: 25, push: [[1, 10], [2, 10], [3, 10]], want: [2, 3], wantDropped: 1 },
    { name: 'drops an item bigger than the byte bound by itself', maxItems: 10, maxBytes: 25, push: [[1, 10], [2, 30], [3, 10]], want: [1, 3], wantDropped: 1 },
    { name: 'grows past its first capacity in order', maxItems: 40, maxBytes: 1e9, push: Array.from({ length: 40 }, (_, i) => [i, 1]), want: Array.from({ length: 40 }, (_, i) => i), wantDropped: 0 },
    { name: 'wraps around many times', maxItems: 7, maxBytes: 1e9, push: Array.from({ length: 100 }, (_, i) => [i, 1]), want: [93, 94, 95, 96, 97, 98, 99], wantDropped: 93 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const q = new BoundedQueue<number>(c.maxItems, c.maxBytes);
      for (const [v, size] of c.push) q.push(v, size);
      assert.equal(q.dropped, c.wantDropped);
      assert.ok(q.length <= c.maxItems && q.bytes <= c.maxBytes);
      const got: number[] = [];
      for (let v = q.shift(); v !== undefined; v = q.shift()) got.push(v);
      assert.deepEqual(got, c.want);
      assert.equal(q.bytes, 0);
    });
  }

  test('interleaved push and shift keep FIFO order and byte count', () => {
    const q = new BoundedQueue<number>(1000, 1e9);
    const want: number[] = [];
    const got: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 7; i++) {
        q.push(next, 3);
        want.push(next++);
      }
      for (let i = 0; i < 5; i++) got.push(q.shift()!);
      assert.equal(q.peek(), want[got.length]);
    }
    for (let v = q.shift(); v !== undefined; v = q.shift()) got.push(v);
    assert.deepEqual(got, want);
  });

  test('clear empties and reports the count', () => {
    const q = new BoundedQueue<number>(10, 100);
    q.push(1, 1);
    q.push(2, 1);
    assert.equal(q.clear(), 2);
    assert.equal(q.length, 0);
    assert.equal(q.shift(), undefined);
  });

  test('with weigh, drops and clear count in its units (a batch of samples counts its samples)', () => {
    const q = new BoundedQueue<{ n: number }>(2, 100, (x) => x.n);
    q.push({ n: 5 }, 1);
    q.push({ n: 1 }, 1);
    q.push({ n: 3 }, 1); // the 5 goes
    assert.equal(q.dropped, 5);
    q.push({ n: 7 }, 101); // too big alone
    assert.equal(q.dropped, 12);
    assert.equal(q.shift()?.n, 1); // head moved: clear walks the ring from it
    q.push({ n: 2 }, 1);
    assert.equal(q.clear(), 5);
  });

  test('rejects bounds below 1', () => {
    assert.throws(() => new BoundedQueue(0, 10), RangeError);
    assert.throws(() => new BoundedQueue(1, 0), RangeError);
  });
});
