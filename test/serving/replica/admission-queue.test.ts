import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdmissionQueue, type AdmissionCounts } from '../../../serving/replica/admission-queue.js';

test('refuses at once over maxInFlight, counting queued requests and bodies still arriving', () => {
  const seen: Array<{ inFlight: number; queued: number }> = [];
  const q = new AdmissionQueue(3, 1, (inFlight, queued) => seen.push({ inFlight, queued }));
  assert.equal(q.tryEnter(), true);
  q.received();
  assert.equal(q.tryAcquire(), true);
  assert.equal(q.tryEnter(), true);
  q.received();
  assert.equal(q.tryAcquire(), false, 'the one slot is busy');
  q.enqueue();
  assert.equal(q.tryEnter(), true);
  assert.equal(q.tryEnter(), false, '4th request refused: 1 running + 1 queued + 1 reading its body');
  assert.deepEqual(q.counts(), { inFlight: 2, queued: 1, receiving: 1 } satisfies AdmissionCounts);
  assert.deepEqual(seen.at(-1), { inFlight: 2, queued: 1 }, 'the body still arriving is not in flight');
  q.leave(false);
  assert.deepEqual(q.counts(), { inFlight: 2, queued: 1, receiving: 0 });
  assert.equal(q.tryEnter(), true, 'room again after one left');
});

test('a request counts as in flight only once its body has arrived (a stalled upload scales nothing)', () => {
  const seen: number[] = [];
  const q = new AdmissionQueue(10, 1, (inFlight) => seen.push(inFlight));
  for (let i = 0; i < 5; i++) assert.equal(q.tryEnter(), true);
  assert.deepEqual(seen, [], 'nothing reported while bodies arrive');
  assert.equal(q.counts().receiving, 5);
  q.received();
  assert.deepEqual(seen, [1]);
  q.leave(true);
  q.leave(false);
  assert.deepEqual(q.counts(), { inFlight: 0, queued: 0, receiving: 3 });
  assert.deepEqual(seen, [1, 0, 0]);
});

test('grants slots in FIFO order across the replica as capacity frees up', async () => {
  const q = new AdmissionQueue(100, 2);
  const order: string[] = [];
  assert.ok(q.tryAcquire());
  assert.ok(q.tryAcquire());
  const waiters = ['a', 'b', 'c'].map((name) => {
    const w = q.enqueue();
    w.granted.then(
      () => order.push(name),
      (err: Error) => order.push(`${name}: ${err.name}`),
    );
    return w;
  });
  assert.equal(q.tryAcquire(), false, 'no jumping the queue while others wait');
  q.releaseSlot();
  await Promise.resolve();
  assert.deepEqual(order, ['a']);
  waiters[1].cancel();
  q.releaseSlot();
  await Promise.resolve();
  assert.deepEqual(order, ['a', 'b: SlotCancelledError', 'c'], 'a cancelled waiter is rejected and skipped');
  assert.equal(q.counts().queued, 0);
  assert.equal(q.busySlots(), 2);
});

test('capacity changes move the queue; cancelling a granted waiter gives its slot back', async () => {
  const q = new AdmissionQueue(100, 0);
  const a = q.enqueue();
  const b = q.enqueue();
  let aGranted = false;
  void a.granted.then(() => (aGranted = true));
  q.setCapacity(1);
  await Promise.resolve();
  assert.equal(aGranted, true);
  assert.equal(q.counts().queued, 1);
  a.cancel();
  assert.equal(q.busySlots(), 1, 'the freed slot went to b');
  await b.granted;
  assert.equal(q.counts().queued, 0);
});

test('rejectWaiters fails every queued request with the given error', async () => {
  const q = new AdmissionQueue(100, 0);
  const ws = [q.enqueue(), q.enqueue()];
  const cancelled = assert.rejects(ws[0].granted, { name: 'SlotCancelledError' });
  ws[0].cancel();
  await cancelled;
  const err = new Error('predictor failed');
  assert.equal(q.rejectWaiters(err), 1);
  await assert.rejects(ws[1].granted, err);
  assert.equal(q.counts().queued, 0);
});

test('rejects a maxInFlight below 1', () => {
  assert.throws(() => new AdmissionQueue(0, 1), RangeError);
});
