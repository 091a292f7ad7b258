import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { TestScheduler } from 'rxjs/testing';
import type { LoadLevel } from '../../../core/metrics/api-load.js';
import { totalInFlight } from '../../../core/operators/total-in-flight.js';
import { sample } from './sample-fixture.js';

let scheduler: TestScheduler;
beforeEach(() => {
  scheduler = new TestScheduler((got, want) => assert.deepEqual(got, want));
});

const level = (atMs: number, totalInFlight: number, replicas: number, cpuUtilization: number | null = null): LoadLevel => ({
  atMs,
  totalInFlight,
  replicas,
  cpuUtilization,
});

test('totalInFlight sums the latest sample per replica and drops replicas silent for more than 3 intervals', () => {
  scheduler.run(({ cold, expectObservable }) => {
    const samples = cold('a 499ms b 499ms c', { a: sample('r1', 2), b: sample('r2', 3), c: sample('r1', 4) });
    // r2 last heard at 500 ⇒ gone at 500 + 3 × 1000 + 1; r1 last heard at 1000 ⇒ gone at 4001.
    expectObservable(samples.pipe(totalInFlight({}, scheduler))).toBe('a 499ms b 499ms c 2500ms d 499ms e', {
      a: level(0, 2, 1),
      b: level(500, 5, 2),
      c: level(1000, 7, 2),
      d: level(3501, 4, 1),
      e: level(4001, 0, 0),
    });
  });
});

test('totalInFlight keeps a replica that reports within 3 intervals, and uses each replica’s own interval', () => {
  scheduler.run(({ cold, expectObservable }) => {
    const slow = { intervalMs: 2000 };
    const samples = cold('a 2999ms b 2999ms c', { a: sample('r1', 1, slow), b: sample('r1', 2, slow), c: sample('r1', 3, slow) });
    expectObservable(samples.pipe(totalInFlight({}, scheduler))).toBe('a 2999ms b 2999ms c 6000ms d', {
      a: level(0, 1, 1),
      b: level(3000, 2, 1),
      c: level(6000, 3, 1),
      d: level(12_001, 0, 0),
    });
  });
});

test('totalInFlight ignores malformed in-flight values and honours staleAfterIntervals', () => {
  scheduler.run(({ cold, expectObservable }) => {
    const samples = cold('a b c d', { a: sample('r1', 1), b: sample('r2', NaN), c: sample('r3', -1), d: sample('r4', Infinity) });
    expectObservable(samples.pipe(totalInFlight({ staleAfterIntervals: 1 }, scheduler))).toBe('a 1000ms e', {
      a: level(0, 1, 1),
      e: level(1001, 0, 0),
    });
  });
});

test('totalInFlight averages CPU utilization over the replicas that report it', () => {
  scheduler.run(({ cold, expectObservable }) => {
    const samples = cold('a b c', {
      a: sample('r1', 1, { cpuUtilization: 0.5 }),
      b: sample('r2', 1),
      c: sample('r1', 1, { cpuUtilization: 0.9 }),
    });
    expectObservable(samples.pipe(totalInFlight({ cpu: true }, scheduler)), '^ 10ms !').toBe('a b c', {
      a: level(0, 1, 1, 0.5),
      b: level(1, 2, 2, 0.5),
      c: level(2, 2, 2, 0.9),
    });
  });
});

test('totalInFlight forwards completion and errors, and cancels the pending drop-out check on teardown', () => {
  scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
    const done = cold('a 9ms |', { a: sample('r1', 1) });
    expectObservable(done.pipe(totalInFlight({}, scheduler))).toBe('a 9ms |', { a: level(0, 1, 1) });
    expectSubscriptions(done.subscriptions).toBe('^ 9ms !');
    const failed = cold('a 9ms #', { a: sample('r1', 1) }, new Error('boom'));
    expectObservable(failed.pipe(totalInFlight({}, scheduler))).toBe('a 9ms #', { a: level(0, 1, 1) }, new Error('boom'));
  });
});

test('totalInFlight drops a short-interval replica on time even behind a long-interval one', () => {
  scheduler.run(({ cold, expectObservable }) => {
    const samples = cold('a b', { a: sample('slow', 1, { intervalMs: 10_000 }), b: sample('fast', 2, { intervalMs: 100 }) });
    expectObservable(samples.pipe(totalInFlight({}, scheduler))).toBe('a b 300ms c 29698ms d', {
      a: level(0, 1, 1),
      b: level(1, 3, 2),
      c: level(302, 1, 1),
      d: level(30_001, 0, 0),
    });
  });
});
