import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { ManualClock } from '../../../core/clock.js';
import type { MetricSample } from '../../../core/metrics/metric-sample.js';
import { InFlightRecorder } from '../../../serving/daemon/in-flight-recorder.js';
import { InFlightRing } from '../../../serving/daemon/in-flight-recording.js';
import { StateStore } from '../../../serving/daemon/state-store.js';

function sample(replica: string, t: number, inFlight: number, ok = 0): MetricSample {
  return { v: 1, api: 'a', replica, revision: 'r', seq: 0, t, intervalMs: 1000, inFlight, inFlightMax: Math.ceil(inFlight), requests: { '2xx': ok, '4xx': 0, '5xx': 0 }, latencyMsSum: ok * 2, ready: true };
}

test('a sealed second sums the fresh replicas; silent ones drop out; none fresh is null', () => {
  const cases: Array<{ name: string; samples: MetricSample[]; sealAt: number; want: number | null }> = [
    { name: 'two replicas: 3.5 + 1.5', samples: [sample('r1', 10_100, 3.5), sample('r2', 10_300, 1.5)], sealAt: 10_950, want: 5 },
    { name: 'the latest sample of a replica counts', samples: [sample('r1', 9_100, 9), sample('r1', 10_100, 2)], sealAt: 10_950, want: 2 },
    { name: 'a replica silent for over 3 s is left out', samples: [sample('r1', 6_000, 7), sample('r2', 10_100, 1)], sealAt: 10_950, want: 1 },
    { name: 'nobody fresh: null (missing never means zero)', samples: [sample('r1', 5_000, 7)], sealAt: 10_950, want: null },
    { name: 'no sample at all: null', samples: [], sealAt: 10_950, want: null },
  ];
  for (const c of cases) {
    const ring = new InFlightRing();
    for (const s of c.samples) ring.observe(s);
    const got = ring.seal(c.sealAt, 2, 4);
    assert.equal(got.inFlight, c.want, `${c.name}: want ${c.want}, got ${got.inFlight}`);
    assert.equal(got.t, 10_000, c.name);
    assert.deepEqual([got.replicas, got.target], [2, 4], c.name);
  }
});

test('responses are counted per second; a second sealed twice stays one point', () => {
  const ring = new InFlightRing();
  ring.observe(sample('r1', 1_100, 1, 5));
  ring.seal(1_500, 1, 1);
  ring.observe(sample('r1', 1_600, 1, 3));
  const p = ring.seal(1_900, 1, 1);
  assert.equal(ring.size, 1);
  assert.deepEqual([p['2xx'], p.latencyMsSum], [8, 16]);
  ring.observe(sample('r1', 2_100, 2, 1));
  assert.equal(ring.seal(2_900, 1, 1)['2xx'], 1, 'the next second starts from zero');
});

test('the ring is bounded, and since() returns the newest points', () => {
  const ring = new InFlightRing(5);
  for (let s = 0; s < 12; s++) {
    ring.observe(sample('r1', s * 1000 + 100, s));
    ring.seal(s * 1000 + 900, 1, 1);
  }
  assert.equal(ring.size, 5);
  assert.deepEqual(ring.since(0).map((p) => p.inFlight), [7, 8, 9, 10, 11]);
  assert.deepEqual(ring.since(10_000).map((p) => p.t), [10_000, 11_000]);
});

test('stored and restored: the same points; malformed files are ignored', () => {
  const ring = new InFlightRing();
  for (let s = 0; s < 4; s++) {
    ring.observe(sample('r1', s * 1000 + 100, s + 0.5, 1));
    ring.seal(s * 1000 + 900, s + 1, 2);
  }
  const stored = JSON.parse(JSON.stringify(ring.toStored()));
  const back = new InFlightRing();
  back.restore(stored);
  assert.deepEqual(back.since(0), ring.since(0));
  for (const bad of [null, 3, { v: 2 }, { ...stored, inFlight: [1] }, { ...stored, t: [3, 2, 1, 0] }, { ...stored, replicas: ['x', 1, 1, 1] }]) {
    const r = new InFlightRing();
    r.restore(bad);
    assert.equal(r.size, 0, JSON.stringify(bad));
  }
});

test('the recorder seals every served API, persists into the state folder and restores after a restart', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'myelin-recording-'));
  try {
    const store = new StateStore(dir);
    await store.init();
    const clock = new ManualClock(100_000);
    const apis = [{ name: 'a', replicas: 2, target: 1 }];
    const rec = new InFlightRecorder({ store, clock, log: pino({ level: 'silent' }), apis: () => apis, persistEveryMs: 2000 });
    await rec.start([]);
    const seen: number[] = [];
    const off = rec.onDidRecord((m) => seen.push(m.get('a')?.inFlight ?? -1));
    for (let s = 0; s < 3; s++) {
      rec.observe(sample('r1', clock.now() + 100, 3));
      clock.advance(1000);
      rec.seal();
    }
    off();
    assert.deepEqual(seen, [3, 3, 3]);
    await rec.close();
    assert.ok(await store.getRecording('a'), 'written on close');
    const again = new InFlightRecorder({ store, clock, log: pino({ level: 'silent' }), apis: () => apis });
    await again.start(['a']);
    assert.deepEqual(again.points('a').map((p) => p.inFlight), [3, 3, 3]);
    await again.close();
    await store.deleteApi('a');
    assert.equal(await store.getRecording('a'), undefined, 'deleted with the API');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
