import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { TestScheduler } from 'rxjs/testing';
import type { EngineEvent } from '../../../core/events/engine-event.js';
import { scalingEvents } from '../../../core/operators/scaling-events.js';
import { scalingTick } from './tick-fixture.js';

let scheduler: TestScheduler;
beforeEach(() => {
  scheduler = new TestScheduler((got, want) => assert.deepEqual(got, want));
});

const unavailable = (t: number, replicas: number): EngineEvent => ({
  v: 1,
  type: 'metrics.unavailable',
  api: 'iris',
  t,
  replicas,
  reason: `metrics unavailable (no fresh samples from any replica): holding ${replicas}`,
});
const decided = (t: number, from: number, to: number): EngineEvent => ({
  v: 1,
  type: 'scaling.decided',
  api: 'iris',
  t,
  from,
  to,
  policy: 'cortex',
  avgInFlight: to,
  target: 1,
  raw: to,
  recommendation: to,
  reason: `to ${to}`,
});

test('scalingEvents: metrics.unavailable once per outage (and at a silent start), scaling.decided per change', () => {
  scheduler.run(({ cold, expectObservable }) => {
    const ticks = cold('a 9ms b 9ms c 9ms d 9ms e 9ms f 9ms g |', {
      a: scalingTick(0, 2, 2, false),
      b: scalingTick(10, 2, 3),
      c: scalingTick(20, 3, 3),
      d: scalingTick(30, 3, 3, false),
      e: scalingTick(40, 3, 3, false),
      f: scalingTick(50, 3, 3),
      g: scalingTick(60, 3, 1),
    });
    expectObservable(ticks.pipe(scalingEvents())).toBe('a 9ms b 19ms d 29ms g |', {
      a: unavailable(0, 2),
      b: decided(10, 2, 3),
      d: unavailable(30, 3),
      g: decided(60, 3, 1),
    });
  });
});
