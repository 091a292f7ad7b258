import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_METRIC_SAMPLE_BYTES, type MetricSample } from '../../../core/metrics/metric-sample.js';
import {
  decodeMetricSample,
  encodeMetricSample,
  explainInvalidMetricSample,
  isMetricSample,
  metricSampleSchemaValidator,
  metricSampleToJson,
} from '../../../core/metrics/metric-sample-validator.js';

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

function without(o: Record<string, unknown>, k: string): Record<string, unknown> {
  const c = { ...o };
  delete c[k];
  return c;
}

const manyClasses = Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`${'c'.repeat(124)}${String(i).padStart(4, '0')}`, 1_000_000]));

const valid: ReadonlyArray<{ name: string; x: unknown }> = [
  { name: 'full sample', x: base },
  { name: 'no cpuUtilization', x: without(base as never, 'cpuUtilization') },
  { name: 'cpuUtilization undefined counts as absent', x: { ...base, cpuUtilization: undefined } },
  { name: 'zeroes everywhere', x: { ...base, seq: 0, t: 0, intervalMs: 0, inFlight: 0, inFlightMax: 0, latencyMsSum: 0, requests: { '2xx': 0, '4xx': 0, '5xx': 0 } } },
  { name: 'cpu over 1 (more than the request)', x: { ...base, cpuUtilization: 3.5 } },
  { name: 'one-letter api', x: { ...base, api: 'a' } },
  { name: '63-character api', x: { ...base, api: `a${'b'.repeat(62)}` } },
  { name: 'replica of 253 characters', x: { ...base, replica: 'r'.repeat(253) } },
  { name: 'replica of 253 astral code points (506 UTF-16 units)', x: { ...base, replica: '😀'.repeat(253) } },
  { name: 'revision with quotes and backslash', x: { ...base, revision: 'a"b\\c' } },
  { name: 'classification monitoring', x: { ...base, monitoring: { modelType: 'classification', classes: { setosa: 3, '(other)': 1 } } } },
  { name: 'classification with no classes', x: { ...base, monitoring: { modelType: 'classification', classes: {} } } },
  { name: 'classification, 201 classes of 128 chars', x: { ...base, monitoring: { modelType: 'classification', classes: manyClasses } } },
  { name: 'regression monitoring (negative values)', x: { ...base, monitoring: { modelType: 'regression', count: 2, min: -1.5, max: 3, sum: 1.5 } } },
  { name: 'monitoring undefined counts as absent', x: { ...base, monitoring: undefined } },
];

const invalid: ReadonlyArray<{ name: string; x: unknown }> = [
  { name: 'null', x: null },
  { name: 'array', x: [base] },
  { name: 'string', x: JSON.stringify(base) },
  ...['v', 'api', 'replica', 'revision', 'seq', 't', 'intervalMs', 'inFlight', 'inFlightMax', 'requests', 'latencyMsSum', 'ready'].map((k) => ({
    name: `missing ${k}`,
    x: without(base as never, k),
  })),
  { name: 'v 2', x: { ...base, v: 2 } },
  { name: 'v "1"', x: { ...base, v: '1' } },
  { name: 'api with upper case', x: { ...base, api: 'Iris' } },
  { name: 'api with a dot (not subject-safe)', x: { ...base, api: 'iris.v2' } },
  { name: 'api ending with a dash', x: { ...base, api: 'iris-' } },
  { name: 'api of 64 characters', x: { ...base, api: `a${'b'.repeat(63)}` } },
  { name: 'empty replica', x: { ...base, replica: '' } },
  { name: 'replica of 254 characters', x: { ...base, replica: 'r'.repeat(254) } },
  { name: 'replica of 254 astral code points', x: { ...base, replica: '😀'.repeat(254) } },
  { name: 'revision of 129 characters', x: { ...base, revision: 'x'.repeat(129) } },
  { name: 'negative seq', x: { ...base, seq: -1 } },
  { name: 'fractional seq', x: { ...base, seq: 1.5 } },
  { name: 'NaN inFlight', x: { ...base, inFlight: Number.NaN } },
  { name: 'Infinity inFlightMax', x: { ...base, inFlightMax: Number.POSITIVE_INFINITY } },
  { name: 'negative inFlight', x: { ...base, inFlight: -0.1 } },
  { name: 'inFlight as a string', x: { ...base, inFlight: '3' } },
  { name: 'negative t', x: { ...base, t: -5 } },
  { name: 'null cpuUtilization', x: { ...base, cpuUtilization: null } },
  { name: 'ready as 1', x: { ...base, ready: 1 } },
  { name: 'unknown top-level field', x: { ...base, extra: 1 } },
  { name: '__proto__ key from JSON', x: JSON.parse(`${JSON.stringify(base).slice(0, -1)},"__proto__":{"x":1}}`) },
  { name: 'requests missing 5xx', x: { ...base, requests: { '2xx': 1, '4xx': 0 } } },
  { name: 'requests with 3xx', x: { ...base, requests: { '2xx': 1, '3xx': 0, '4xx': 0, '5xx': 0 } } },
  { name: 'requests fractional', x: { ...base, requests: { '2xx': 1.5, '4xx': 0, '5xx': 0 } } },
  { name: 'requests as array', x: { ...base, requests: [1, 0, 0] } },
  { name: 'monitoring of unknown type', x: { ...base, monitoring: { modelType: 'ranking', classes: {} } } },
  { name: 'monitoring null', x: { ...base, monitoring: null } },
  { name: 'classification with a negative count', x: { ...base, monitoring: { modelType: 'classification', classes: { a: -1 } } } },
  { name: 'classification with 257 classes', x: { ...base, monitoring: { modelType: 'classification', classes: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`c${i}`, 1])) } } },
  { name: 'class name of 129 characters', x: { ...base, monitoring: { modelType: 'classification', classes: { ['n'.repeat(129)]: 1 } } } },
  { name: 'classification with an extra field', x: { ...base, monitoring: { modelType: 'classification', classes: {}, count: 1 } } },
  { name: 'regression missing sum', x: { ...base, monitoring: { modelType: 'regression', count: 1, min: 0, max: 0 } } },
  { name: 'regression with classes', x: { ...base, monitoring: { modelType: 'regression', count: 1, min: 0, max: 0, sum: 0, classes: {} } } },
];

describe('metric sample validation', () => {
  const ajv = metricSampleSchemaValidator();
  for (const c of valid) {
    test(`valid: ${c.name}`, () => {
      assert.equal(ajv(c.x), true, `schema: want valid, got ${JSON.stringify(ajv.errors)}`);
      assert.equal(isMetricSample(c.x), true, 'fast check: want valid, got invalid');
      assert.equal(explainInvalidMetricSample(c.x), '');
    });
  }
  for (const c of invalid) {
    test(`invalid: ${c.name}`, () => {
      assert.equal(ajv(c.x), false, 'schema: want invalid, got valid');
      assert.equal(isMetricSample(c.x), false, 'fast check: want invalid, got valid');
      assert.notEqual(explainInvalidMetricSample(c.x), '');
    });
  }

  test('fast check agrees with the schema on every single-field mutation of the samples', () => {
    const odd: unknown[] = [undefined, null, -1, -0, 0, 1, 1.5, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY, '', 'a', 'A', 'x'.repeat(300), true, false, [], {}, { '2xx': 1 }];
    const seeds: Record<string, unknown>[] = [
      base as never,
      { ...base, monitoring: { modelType: 'classification', classes: { a: 1 } } },
      { ...base, monitoring: { modelType: 'regression', count: 1, min: 0, max: 1, sum: 1 } },
    ];
    let checked = 0;
    let disagreements: string[] = [];
    const check = (x: unknown, what: string): void => {
      checked++;
      const want = ajv(x);
      if (isMetricSample(x) !== want) disagreements.push(`${what}: schema says ${want}`);
    };
    for (const seed of seeds) {
      const paths: string[][] = [];
      for (const k of Object.keys(seed)) {
        paths.push([k]);
        const v = seed[k];
        if (v && typeof v === 'object') for (const k2 of Object.keys(v)) paths.push([k, k2]);
      }
      paths.push(['extra'], ['requests', '3xx'], ['monitoring', 'extra'], ['monitoring', 'classes', 'z']);
      for (const p of paths) {
        for (const value of [...odd, '__delete__']) {
          const x = structuredClone(seed);
          let o: Record<string, unknown> = x;
          for (const k of p.slice(0, -1)) {
            const next = o[k];
            if (!next || typeof next !== 'object') {
              o = {};
              break;
            }
            o = next as Record<string, unknown>;
          }
          if (value === '__delete__') delete o[p[p.length - 1]];
          else o[p[p.length - 1]] = value;
          check(x, `${p.join('.')} = ${String(value)}`);
        }
      }
    }
    assert.ok(checked > 500, `want > 500 mutations checked, got ${checked}`);
    assert.deepEqual(disagreements, []);
    disagreements = [];
  });
});

describe('metric sample codec', () => {
  const samples: MetricSample[] = valid.map((c) => c.x as MetricSample).filter((s) => s.cpuUtilization !== undefined || !('cpuUtilization' in s));
  for (const [i, s] of samples.entries()) {
    test(`encodes like JSON.stringify and decodes back (#${i})`, () => {
      const want = JSON.stringify(s);
      assert.equal(metricSampleToJson(s), want);
      const bytes = encodeMetricSample(s);
      assert.equal(Buffer.from(bytes).toString('utf8'), want);
      const got = decodeMetricSample(bytes);
      assert.equal(got.ok, true);
      if (got.ok) assert.deepEqual(got.value, JSON.parse(want));
    });
  }

  test('a sample with 201 classes of 128 characters fits the size limit', () => {
    const bytes = encodeMetricSample({ ...base, monitoring: { modelType: 'classification', classes: manyClasses } });
    assert.ok(bytes.byteLength <= MAX_METRIC_SAMPLE_BYTES, `want <= ${MAX_METRIC_SAMPLE_BYTES}, got ${bytes.byteLength}`);
  });

  const bad: ReadonlyArray<{ name: string; bytes: Uint8Array; want: string }> = [
    { name: 'oversized (checked before parsing)', bytes: new Uint8Array(MAX_METRIC_SAMPLE_BYTES + 1).fill(0x20), want: 'oversized' },
    { name: 'not JSON', bytes: Buffer.from('{"v":1,'), want: 'malformed' },
    { name: 'empty', bytes: new Uint8Array(0), want: 'malformed' },
    { name: 'invalid UTF-8 inside a string', bytes: Buffer.concat([Buffer.from('{"v":1,"api":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), want: 'invalid' },
    { name: 'JSON but not a sample', bytes: Buffer.from(JSON.stringify({ ...base, seq: -1 })), want: 'invalid' },
  ];
  for (const c of bad) {
    test(`decode rejects ${c.name}`, () => {
      const got = decodeMetricSample(c.bytes);
      assert.equal(got.ok, false);
      if (!got.ok) {
        assert.equal(got.reason, c.want);
        assert.notEqual(got.detail, '');
      }
    });
  }
});
