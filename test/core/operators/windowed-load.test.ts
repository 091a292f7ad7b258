import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { TestScheduler } from 'rxjs/testing';
import type { LoadLevel, TickLoad } from '../../../core/metrics/api-load.js';
import { windowedLoad } from '../../../core/operators/windowed-load.js';

let scheduler: TestScheduler;
beforeEach(() => {
  scheduler = new TestScheduler((got, want) => assert.deepEqual(got, want));
});

const lv = (atMs: number, totalInFlight: number, replicas: number, cpuUtilization: number | null = null): LoadLevel => ({ atMs, totalInFlight, replicas, cpuUtilization });
const tick = (atMs: number, o: Partial<TickLoad>): TickLoad => ({
  atMs,
  replicasReporting: 1,
  totalInFlight: null,
  avgInFlight: null,
  panicAvgInFlight: null,
  avgCpuUtilization: null,
  coveredMs: 0,
  ...o,
});

test('windowedLoad emits the time-weighted mean of the known total over the window at every tick', () => {
  scheduler.run(({ cold, expectObservable }) => {
    // Levels carry their own time; the marbles place them at the same frames.
    const levels = cold('a 14ms b 16ms c 32ms |', { a: lv(0, 4, 1), b: lv(15, 10, 2), c: lv(32, 0, 0) });
    expectObservable(levels.pipe(windowedLoad({ tickMs: 10, windowMs: 20, panicWindowMs: 5 }, scheduler))).toBe(
      '10ms t 9ms u 9ms v 9ms w 9ms x 9ms y 4ms |',
      {
        // (0, 10]: 4 over the known 10 ms (no data before 0).
        t: tick(10, { totalInFlight: 4, avgInFlight: 4, panicAvgInFlight: 4, coveredMs: 10 }),
        // (0, 20]: (4 × 15 + 10 × 5) / 20 = 5.5; panic (15, 20]: 10.
        u: tick(20, { replicasReporting: 2, totalInFlight: 10, avgInFlight: 5.5, panicAvgInFlight: 10, coveredMs: 20 }),
        // (10, 30]: (4 × 5 + 10 × 15) / 20 = 8.5.
        v: tick(30, { replicasReporting: 2, totalInFlight: 10, avgInFlight: 8.5, panicAvgInFlight: 10, coveredMs: 20 }),
        // Nobody reports from 32: (20, 40] knows only (20, 32] at 10; the panic window (35, 40] knows nothing.
        w: tick(40, { replicasReporting: 0, totalInFlight: null, avgInFlight: 10, panicAvgInFlight: null, coveredMs: 12 }),
        x: tick(50, { replicasReporting: 0, totalInFlight: null, avgInFlight: 10, coveredMs: 2 }),
        y: tick(60, { replicasReporting: 0, totalInFlight: null, avgInFlight: null, coveredMs: 0 }),
      },
    );
  });
});

test('windowedLoad averages CPU utilization when asked, and rounds means to 1e-6', () => {
  scheduler.run(({ cold, expectObservable }) => {
    const levels = cold('a 2ms b 6ms |', { a: lv(0, 8 / 3, 3, 0.5), b: lv(3, 8 / 3 + 1e-12, 3, 0.9) });
    expectObservable(levels.pipe(windowedLoad({ tickMs: 9, windowMs: 9, cpu: true }, scheduler))).toBe('9ms t |', {
      t: tick(9, { replicasReporting: 3, totalInFlight: 2.666667, avgInFlight: 2.666667, avgCpuUtilization: 0.766667, coveredMs: 9 }),
    });
  });
});

test('windowedLoad stops ticking when unsubscribed and forwards errors', () => {
  scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
    const levels = cold('a', { a: lv(0, 1, 1) });
    expectObservable(levels.pipe(windowedLoad({ tickMs: 5, windowMs: 5 }, scheduler)), '^ 11ms !').toBe('5ms t 4ms u', {
      t: tick(5, { totalInFlight: 1, avgInFlight: 1, coveredMs: 5 }),
      u: tick(10, { totalInFlight: 1, avgInFlight: 1, coveredMs: 5 }),
    });
    expectSubscriptions(levels.subscriptions).toBe('^ 11ms !');
    const failing = cold('a 6ms #', { a: lv(0, 1, 1) }, new Error('boom'));
    expectObservable(failing.pipe(windowedLoad({ tickMs: 5, windowMs: 5 }, scheduler))).toBe('5ms t 1ms #', { t: tick(5, { totalInFlight: 1, avgInFlight: 1, coveredMs: 5 }) }, new Error('boom'));
  });
});
