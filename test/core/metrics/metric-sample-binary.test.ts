import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_METRIC_SAMPLE_BYTES, type MetricSample } from '../../../core/metrics/metric-sample.js';
import {
  decodeMetricSampleBinary,
  decodeMetricSampleMessage,
  encodeMetricSampleBinary,
  forEachMetricSample,
  METRIC_SAMPLE_BATCH_MAGIC,
  METRIC_SAMPLE_LAYOUT,
  METRIC_SAMPLE_MAGIC,
  MetricSampleBatchEncoder,
} from '../../../core/metrics/metric-sample-binary.js';
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

describe('metric sample batch frames', () => {
  /** What an encoder sends for `list` added in one go, then flushed. */
  function framesOf(list: readonly MetricSample[], limit?: number): { message: Buffer; samples: number }[] {
    const out: { message: Buffer; samples: number }[] = [];
    const enc = new MetricSampleBatchEncoder((message, samples) => out.push({ message: Buffer.from(message), samples }), limit);
    for (const s of list) enc.add(s);
    assert.equal(enc.pending + out.reduce((a, b) => a + b.samples, 0), list.length, 'every sample is sent or pending');
    enc.flush();
    assert.equal(enc.pending, 0);
    return out;
  }
  function decodeAll(bytes: Uint8Array): ReturnType<typeof decodeMetricSampleMessage>[] {
    const got: ReturnType<typeof decodeMetricSampleMessage>[] = [];
    assert.equal(forEachMetricSample(bytes, (r) => got.push(r)), got.length);
    return got;
  }
  const seqs = (n: number, over: Partial<MetricSample> = {}): MetricSample[] => Array.from({ length: n }, (_, i) => ({ ...base, ...over, seq: i }));

  test('one sample is a plain layout-1 message, byte for byte what encodeMetricSampleBinary writes', () => {
    const out = framesOf([base]);
    assert.equal(out.length, 1);
    assert.equal(out[0].samples, 1);
    assert.deepEqual(out[0].message, encodeMetricSampleBinary(base));
  });

  test('several samples are one frame: magic 0xB6, version 1, the count, then each layout-1 sample with its length; they decode in order', () => {
    const list = [base, without(base, 'cpuUtilization'), { ...base, seq: 8, monitoring: { modelType: 'classification' as const, classes: { setosa: 3, 'vérsicolor': 1 } } }, { ...base, replica: 'réplica-😀-2', seq: 9 }];
    const out = framesOf(list);
    assert.equal(out.length, 1);
    const m = out[0].message;
    assert.equal(out[0].samples, 4);
    assert.deepEqual([m[0], m[1], m.readUInt16LE(2)], [METRIC_SAMPLE_BATCH_MAGIC, METRIC_SAMPLE_LAYOUT, 4]);
    const first = encodeMetricSampleBinary(list[0]);
    assert.equal(m.readUInt16LE(4), first.length);
    assert.deepEqual(m.subarray(6, 6 + first.length), first);
    const got = decodeAll(m);
    assert.deepEqual(
      got.map((r) => (r.ok ? r.value : r.detail)),
      list.map((s) => JSON.parse(Buffer.from(encodeMetricSample(s)).toString('utf8')) as unknown),
    );
  });

  test('a frame never exceeds the limit: samples beyond it start the next message, in order, none lost', () => {
    const list = seqs(1200);
    const out = framesOf(list);
    assert.ok(out.length >= 2, `${out.length} messages`);
    for (const o of out) assert.ok(o.message.byteLength <= MAX_METRIC_SAMPLE_BYTES, `${o.message.byteLength} bytes`);
    assert.equal(out.reduce((a, b) => a + b.samples, 0), 1200);
    const got = out.flatMap((o) => decodeAll(o.message));
    assert.deepEqual(got.map((r) => (r.ok ? r.value.seq : -1)), list.map((s) => s.seq));
    // A small limit: the last sample of a full frame can be alone, and then it is plain layout 1.
    const one = encodeMetricSampleBinary(base).byteLength;
    const small = framesOf(seqs(3), 4 + 2 * (2 + one));
    assert.deepEqual(small.map((o) => [o.message[0], o.samples]), [[METRIC_SAMPLE_BATCH_MAGIC, 2], [METRIC_SAMPLE_MAGIC, 1]]);
  });

  test('a sample of a frame that is off-schema is refused alone; the others are delivered', () => {
    const frame = framesOf([{ ...base, seq: 1 }, { ...base, seq: 2 }, { ...base, seq: 3 }])[0].message;
    // seq of the second sample: header 4, first sample (2 + len), its own length prefix 2, then offset 8.
    const len = frame.readUInt16LE(4);
    frame.writeDoubleLE(-5, 4 + 2 + len + 2 + 8);
    const got = decodeAll(frame);
    assert.deepEqual(got.map((r) => (r.ok ? r.value.seq : r.reason)), [1, 'invalid', 3]);
  });

  const frame = framesOf([{ ...base, seq: 1 }, { ...base, seq: 2 }])[0].message;
  const edit = (f: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(frame);
    f(b);
    return b;
  };
  for (const c of [
    { name: 'another batch version', bytes: edit((b) => (b[1] = 2)), detail: /batch version 2 is not supported/ },
    { name: 'a count of 0', bytes: edit((b) => b.writeUInt16LE(0, 2)), detail: /0 samples/ },
    { name: 'a count larger than the samples', bytes: edit((b) => b.writeUInt16LE(3, 2)), detail: /truncated/ },
    { name: 'a count smaller than the samples', bytes: edit((b) => b.writeUInt16LE(1, 2)), detail: /bytes after its 1 samples/ },
    { name: 'a sample length past the end', bytes: edit((b) => b.writeUInt16LE(60_000, 4)), detail: /truncated/ },
    { name: 'a header cut short', bytes: frame.subarray(0, 3), detail: /truncated/ },
    { name: 'a frame cut short', bytes: frame.subarray(0, frame.length - 1), detail: /truncated/ },
  ]) {
    test(`a frame with ${c.name} is one malformed message and delivers nothing`, () => {
      const got = decodeAll(c.bytes);
      assert.equal(got.length, 1);
      assert.equal(got[0].ok, false);
      if (!got[0].ok) {
        assert.equal(got[0].reason, 'malformed');
        assert.match(got[0].detail, c.detail);
      }
    });
  }

  test('an oversized frame is refused before its framing is read; decodeMetricSampleMessage refuses a frame as not one sample', () => {
    const big = Buffer.concat([frame, Buffer.alloc(MAX_METRIC_SAMPLE_BYTES)]);
    const got = decodeAll(big);
    assert.equal(got.length === 1 && !got[0].ok && got[0].reason, 'oversized');
    const one = decodeMetricSampleMessage(frame);
    assert.equal(!one.ok && one.reason, 'malformed');
    // Plain messages go through forEachMetricSample as one result each.
    assert.equal(decodeAll(encodeMetricSample(base)).length, 1);
    assert.equal(decodeAll(new Uint8Array(0)).length, 1);
  });
});
