import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InFlightWindow } from '../../../serving/replica/in-flight-window.js';
import { ReplicaSampler } from '../../../serving/replica/replica-sampler.js';

test('samples carry responses by class, latency sum, in-flight mean and max, and count up seq', () => {
  const s = new ReplicaSampler({ api: 'a', replica: 'r1', revision: 'rev' });
  const w = new InFlightWindow(0);
  w.record(0, 1);
  for (const [status, ms] of [[200, 3], [201, 4], [302, 1], [400, 2], [404, 2], [500, 10], [503, 0], [504, 60]] as const) s.recordResponse(status, ms);
  w.record(500, 3);
  w.record(800, 0);
  const got = s.take(1000, w, { ready: true, cpuUtilization: 0.25 });
  assert.deepEqual(got, {
    v: 1,
    api: 'a',
    replica: 'r1',
    revision: 'rev',
    seq: 1,
    t: 1000,
    intervalMs: 1000,
    inFlight: (1 * 500 + 3 * 300) / 1000,
    inFlightMax: 3,
    cpuUtilization: 0.25,
    requests: { '2xx': 3, '4xx': 2, '5xx': 3 },
    latencyMsSum: 82,
    ready: true,
  });
  const next = s.take(2000, w, { ready: false, monitoring: { modelType: 'classification', classes: { x: 1 } } });
  assert.deepEqual(
    [next.seq, next.requests, next.latencyMsSum, next.inFlight, next.inFlightMax, next.ready, next.monitoring, 'cpuUtilization' in next],
    [2, { '2xx': 0, '4xx': 0, '5xx': 0 }, 0, 0, 0, false, { modelType: 'classification', classes: { x: 1 } }, false],
  );
});
