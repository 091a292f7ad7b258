import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeadlineQueue, type Deadline } from '../../../serving/replica/deadline-queue.js';
import { waitFor } from '../../harness/http-client.js';

function item(name: string, expired: string[]): Deadline {
  return { done: false, deadlineMs: 0, expire: () => expired.push(name) };
}

test('items expire in order after the timeout unless done first; one timer serves all', async () => {
  let now = 0;
  const q = new DeadlineQueue<Deadline>(30, () => now);
  const expired: string[] = [];
  const a = item('a', expired);
  const b = item('b', expired);
  const c = item('c', expired);
  q.add(a);
  now = 10;
  q.add(b);
  now = 20;
  q.add(c);
  b.done = true;
  now = 45; // a is due (30), b is done, c (50) is not due yet
  await waitFor('a expired', () => expired.length === 1, 5000, 5);
  assert.deepEqual(expired, ['a']);
  assert.equal(q.size(), 1, 'only c is left');
  now = 60;
  await waitFor('c expired', () => expired.length === 2, 5000, 5);
  assert.deepEqual(expired, ['a', 'c']);
  assert.equal(q.size(), 0);
  assert.equal(a.done && c.done, true);
});

test('clear stops everything', async () => {
  let now = 0;
  const q = new DeadlineQueue<Deadline>(5, () => now);
  const expired: string[] = [];
  q.add(item('x', expired));
  q.clear();
  now = 100;
  q.add(item('y', expired));
  now = 200;
  await waitFor('y expired', () => expired.length === 1, 5000, 5);
  assert.deepEqual(expired, ['y']);
});

test('finish forgets finished items at once, and compacts those stuck behind a pending one', () => {
  let now = 0;
  const q = new DeadlineQueue<Deadline>(60_000, () => now);
  const expired: string[] = [];
  // Answered in order (c = 1): the queue is empty after each one, not kept for 60 s.
  for (let i = 0; i < 5000; i++) {
    const x = item(`x${i}`, expired);
    q.add(x);
    q.finish(x);
    assert.equal(x.done, true);
  }
  assert.equal(q.size(), 0);
  // One slow item at the head: the finished ones behind it are dropped once they outnumber the pending ones (+1024).
  const slow = item('slow', expired);
  q.add(slow);
  for (let i = 0; i < 5000; i++) {
    const x = item(`y${i}`, expired);
    q.add(x);
    q.finish(x);
  }
  const want = 1 + 1024 + 2;
  assert.ok(q.size() <= want, `want at most ${want} queued, got ${q.size()}`);
  q.finish(slow);
  assert.equal(q.size(), 0);
  q.finish(slow); // already done: nothing
  assert.deepEqual(expired, []);
  q.clear();
});

test('an item finished after it expired is left alone', async () => {
  let now = 0;
  const q = new DeadlineQueue<Deadline>(10, () => now);
  const expired: string[] = [];
  const a = item('a', expired);
  const b = item('b', expired);
  q.add(a);
  q.add(b);
  q.finish(b);
  now = 20;
  await waitFor('a expired', () => expired.length === 1, 5000, 5);
  q.finish(a);
  assert.deepEqual(expired, ['a']);
  assert.equal(q.size(), 0);
});
