import assert from 'node:assert/strict';
import { test } from 'node:test';
import { delay, interval, map, of, take, timer } from 'rxjs';
import { ReplayScheduler } from '../../../core/scaling/replay-scheduler.js';

test('ReplayScheduler runs interval, timer and delay in virtual time, in due order', () => {
  const s = new ReplayScheduler(1000);
  const got: string[] = [];
  interval(10, s).pipe(take(3)).subscribe((i) => got.push(`i${i}@${s.now()}`));
  timer(15, s).subscribe(() => got.push(`t@${s.now()}`));
  of('d').pipe(delay(20, s)).subscribe((v) => got.push(`${v}@${s.now()}`));
  assert.deepEqual(got, []);
  s.advanceTo(1005);
  assert.equal(s.now(), 1005);
  assert.deepEqual(got, []);
  s.advanceTo(1100);
  // At 1020 the delay (scheduled at subscription) comes before the interval's reschedule (made at 1010).
  assert.deepEqual(got, ['i0@1010', 't@1015', 'd@1020', 'i1@1020', 'i2@1030']);
  assert.equal(s.now(), 1100);
  assert.equal(s.nextDueMs(), null, 'nothing left once take(3) completed');
});

test('ReplayScheduler: same due time runs in scheduling order; cancelled actions never run', () => {
  const s = new ReplayScheduler();
  const got: string[] = [];
  s.schedule(() => got.push('a'), 5);
  const b = s.schedule(() => got.push('b'), 5);
  s.schedule(() => got.push('c'), 5);
  b.unsubscribe();
  s.advanceTo(5);
  assert.deepEqual(got, ['a', 'c']);
});

test('ReplayScheduler: a rescheduled action keeps one pending entry and runs at its new time', () => {
  const s = new ReplayScheduler();
  const times: number[] = [];
  const sub = s.schedule(function (n?: number) {
    times.push(s.now());
    if ((n ?? 0) < 1000) this.schedule((n ?? 0) + 1, 7);
  }, 7, 0);
  s.advanceTo(7 * 1001);
  assert.equal(times.length, 1001);
  assert.equal(times.at(-1), 7007);
  sub.unsubscribe();
  assert.equal(s.nextDueMs(), null);
});

test('ReplayScheduler: an error thrown by an action propagates out of advanceTo', () => {
  const s = new ReplayScheduler();
  timer(3, s)
    .pipe(
      map(() => {
        throw new Error('boom');
      }),
    )
    .subscribe({ error: () => undefined });
  s.schedule(() => {
    throw new Error('raw');
  }, 4);
  assert.throws(() => s.advanceTo(10), /raw/);
});
