import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_METRIC_SAMPLE_BYTES, type MetricSample } from '../../../core/metrics/metric-sample.js';
import { decodeMetricSampleBinary, decodeMetricSampleMessage, encodeMetricSampleBinary, METRIC_SAMPLE_LAYOUT, METRIC_SAMPLE_MAGIC } from '../../../core/metrics/metric-sample-binary.js';
import { encodeMetricSample, isMetricSample } from '../../../core/metrics/metric-sample-validator.js';

const base: MetricSample = {
  v: 1,
  api: 'iris-classifier',
  replica: 'iris-classifier-7f9c2-1',
  revision: 'a1b2c3d4',
  seq: 7,
  t: 1_763_900_000_000,
  intervalMs: 1000,
  inFlight: 3.25,
  inFlightMax: 5,
  cpuUtilization: 0.42,
  requests: { '2xx': 120, '4xx': 1, '5xx': 0 },
  latencyMsSum: 2345.5,
  ready: true,
};

function without<K extends keyof MetricSample>(s: MetricSample, k: K): MetricSample {
  const c = { ...s } as Record<string, unknown>;
  delete c[k];
  return c as unknown as MetricSample;
}

const manyClasses = Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`${'c'.repeat(124)}${String(i).padStart(4, '0')}`, 1_000_000]));

const roundTrips: ReadonlyArray<{ name: string; s: MetricSample }> = [
  { name: 'full sample', s: base },
  { name: 'no cpuUtilization', s: without(base, 'cpuUtilization') },
  { name: 'not ready, zeroes', s: { ...base, ready: false, seq: 0, t: 0, inFlight: 0, inFlightMax: 0, latencyMsSum: 0, requests: { '2xx': 0, '4xx': 0, '5xx': 0 } } },
  { name: 'integers up to 2^53 - 1', s: { ...base, seq: Number.MAX_SAFE_INTEGER, requests: { '2xx': Number.MAX_SAFE_INTEGER, '4xx': 0, '5xx': 3 } } },
  { name: 'non-ASCII replica and revision', s: { ...base, replica: 'réplica-😀-1', revision: 'ünïcode"\\' } },
  { name: 'replica of 253 astral code points', s: { ...base, replica: '😀'.repeat(253) } },
  { name: 'classification monitoring', s: { ...base, monitoring: { modelType: 'classification', classes: { setosa: 3, 'vérsicolor': 1, '': 0 } } } },
  { name: 'classification, no classes', s: { ...base, monitoring: { modelType: 'classification', classes: {} } } },
  { name: 'classification, 201 classes of 128 chars', s: { ...base, monitoring: { modelType: 'classification', classes: manyClasses } } },
  { name: 'regression monitoring', s: { ...base, monitoring: { modelType: 'regression', count: 2, min: -1.5, max: 3, sum: 1.5 } } },
];

describe('metric sample binary layout 1', () => {
  for (const c of roundTrips) {
    test(`round trip: ${c.name} (same value as the JSON encoding decodes to)`, () => {
      const bytes = encodeMetricSampleBinary(c.s);
      assert.equal(bytes[0], METRIC_SAMPLE_MAGIC);
      assert.equal(bytes[1], METRIC_SAMPLE_LAYOUT);
      const got = decodeMetricSampleMessage(bytes);
      assert.equal(got.ok, true, got.ok ? '' : got.detail);
      const want = JSON.parse(Buffer.from(encodeMetricSample(c.s)).toString('utf8')) as unknown;
      if (got.ok) assert.deepEqual(got.value, want);
    });
  }

  test('the same replica encoded again after its revision changed carries the new revision', () => {
    encodeMetricSampleBinary(base);
    const got = decodeMetricSampleBinary(encodeMetricSampleBinary({ ...base, revision: 'new-rev' }));
    assert.equal(got.ok && got.value.revision, 'new-rev');
  });

  test('a typical sample is at most 60 % of its JSON size', () => {
    const bin = encodeMetricSampleBinary(base).byteLength;
    const json = encodeMetricSample(base).byteLength;
    assert.ok(bin <= 0.6 * json, `want binary ${bin} <= 0.6 × JSON ${json}`);
  });

  test('decodes from a plain Uint8Array at an odd offset (not only a Buffer)', () => {
    const bytes = encodeMetricSampleBinary(base);
    const backing = new Uint8Array(bytes.byteLength + 3);
    backing.set(bytes, 3);
    const got = decodeMetricSampleMessage(new Uint8Array(backing.buffer, 3, bytes.byteLength));
    assert.equal(got.ok, true);
  });

  test('reads the JSON encoding too (replicas before the binary layout)', () => {
    const got = decodeMetricSampleMessage(encodeMetricSample(base));
    assert.equal(got.ok, true);
    if (got.ok) assert.deepEqual(got.value, base);
  });

  const good = encodeMetricSampleBinary(base);
  const patched = (f: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good);
    f(b);
    return b;
  };
  /** Offset of the float64 field `i` (seq 0, t 1, … latencyMsSum 8, cpuUtilization 9). */
  const field = (i: number): number => 8 + i * 8;
  const bad: ReadonlyArray<{ name: string; bytes: Uint8Array; want: 'oversized' | 'malformed' | 'invalid'; detail: RegExp }> = [
    { name: 'a wrong layout version byte', bytes: patched((b) => (b[1] = 2)), want: 'malformed', detail: /layout version 2 is not supported/ },
    { name: 'layout version 0', bytes: patched((b) => (b[1] = 0)), want: 'malformed', detail: /layout version 0/ },
    { name: 'unknown flag bits', bytes: patched((b) => (b[2] |= 0x10)), want: 'malformed', detail: /flag bits/ },
    { name: 'monitoring kind 3', bytes: patched((b) => (b[2] |= 0b1100)), want: 'malformed', detail: /monitoring kind/ },
    { name: 'truncated header', bytes: good.subarray(0, 40), want: 'malformed', detail: /truncated/ },
    { name: 'truncated strings', bytes: good.subarray(0, good.length - 2), want: 'malformed', detail: /truncated/ },
    { name: 'trailing bytes', bytes: Buffer.concat([good, Buffer.from([0])]), want: 'malformed', detail: /after its end/ },
    { name: 'invalid UTF-8 in an id', bytes: patched((b) => (b[b.length - 1] = 0xff)), want: 'malformed', detail: /UTF-8/ },
    { name: 'oversized (checked first)', bytes: Buffer.concat([good, Buffer.alloc(MAX_METRIC_SAMPLE_BYTES)]), want: 'oversized', detail: /bytes >/ },
    { name: 'a negative seq', bytes: patched((b) => b.writeDoubleLE(-1, field(0))), want: 'invalid', detail: /seq/ },
    { name: 'a fractional 2xx count', bytes: patched((b) => b.writeDoubleLE(1.5, field(5))), want: 'invalid', detail: /2xx/ },
    { name: 'NaN inFlight', bytes: patched((b) => b.writeDoubleLE(Number.NaN, field(3))), want: 'invalid', detail: /inFlight/ },
    { name: 'an API name that is not a DNS label', bytes: encodeMetricSampleBinary({ ...base, api: 'Iris_X' }), want: 'invalid', detail: /api/ },
    { name: 'an empty replica id', bytes: encodeMetricSampleBinary({ ...base, replica: '' }), want: 'invalid', detail: /replica/ },
  ];
  for (const c of bad) {
    test(`rejects ${c.name} as ${c.want}`, () => {
      const got = decodeMetricSampleMessage(c.bytes);
      assert.equal(got.ok, false);
      if (!got.ok) {
        assert.equal(got.reason, c.want, got.detail);
        assert.match(got.detail, c.detail);
      }
    });
  }

  // The decoder checks the values it read instead of walking the object with isMetricSample: the
  // two must decide alike on every value a field can carry in the layout.
  test('accepts exactly what isMetricSample accepts, field by field', () => {
    const numbers = [0, 1, 2.5, -1, -0.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.MAX_SAFE_INTEGER, 2 ** 60, 1e-300];
    const fields = ['seq', 't', 'intervalMs', 'inFlight', 'inFlightMax', 'latencyMsSum', 'cpuUtilization'] as const;
    const strings = { api: ['a', 'iris-x9', 'Iris', '-a', 'a-', 'a'.repeat(63), 'a'.repeat(64), 'ä', ''], replica: ['r', '', 'x'.repeat(253), 'x'.repeat(254), '😀'.repeat(253), '😀'.repeat(254)], revision: ['v', '', 'y'.repeat(128), 'y'.repeat(129)] };
    const cases: MetricSample[] = [];
    for (const f of fields) for (const v of numbers) cases.push({ ...base, [f]: v });
    for (const k of ['2xx', '4xx', '5xx'] as const) for (const v of numbers) cases.push({ ...base, requests: { ...base.requests, [k]: v } });
    for (const [f, vs] of Object.entries(strings)) for (const v of vs) cases.push({ ...base, [f]: v });
    for (const v of numbers) {
      cases.push({ ...base, monitoring: { modelType: 'regression', count: v, min: v, max: 1, sum: 1 } });
      cases.push({ ...base, monitoring: { modelType: 'classification', classes: { a: v } } });
    }
    let accepted = 0;
    for (const c of cases) {
      let bytes: Buffer;
      try {
        bytes = encodeMetricSampleBinary(c);
      } catch {
        continue; // longer than the layout can carry (an API name over 255 bytes): never on the wire
      }
      const got = decodeMetricSampleBinary(bytes);
      // The layout carries -0 as -0 and every float64 as is, so the decoded sample is the same sample.
      assert.equal(got.ok, isMetricSample(c), `${JSON.stringify(c)} → ${got.ok ? 'ok' : got.detail}`);
      if (got.ok) accepted++;
      else assert.equal(got.reason, 'invalid');
    }
    assert.ok(accepted > 20 && accepted < cases.length - 20, `a mix of accepted and refused cases (${accepted} of ${cases.length})`);
  });
});
