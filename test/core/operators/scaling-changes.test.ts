import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { TestScheduler } from 'rxjs/testing';
import { scalingChanges } from '../../../core/operators/scaling-changes.js';
import { scalingTick } from './tick-fixture.js';

let scheduler: TestScheduler;
beforeEach(() => {
  scheduler = new TestScheduler((got, want) => assert.deepEqual(got, want));
});

test('scalingChanges lets through only ticks that change the count', () => {
  scheduler.run(({ cold, expectObservable }) => {
    const v = { a: scalingTick(0, 1, 1), b: scalingTick(10, 1, 3), c: scalingTick(20, 3, 3, false), d: scalingTick(30, 3, 2) };
    expectObservable(cold('a 9ms b 9ms c 9ms d |', v).pipe(scalingChanges())).toBe('10ms b 19ms d |', { b: v.b, d: v.d });
  });
});
