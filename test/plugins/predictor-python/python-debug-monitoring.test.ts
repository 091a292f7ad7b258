// `?debug=true` and prediction monitoring with a PythonPredictor behind a real replica: the replica
// logs the raw sample, Python reports the inference stage (JSON-safe: numpy as lists, bytes as a size);
// monitoring counts classes (a string label, an integer, a numpy integer, a `key` into a dict) and
// regression values extracted on the Python side, and the replica's metric samples carry them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MonitoringSpec } from '../../../core/config/api-spec.js';
import type { MetricSample } from '../../../core/metrics/metric-sample.js';
import { waitFor } from '../../harness/http-client.js';
import { startPythonReplica, type PythonReplica } from './python-test-kit.js';

const PREDICTOR = `
  import numpy as np


  class PythonPredictor:
      def __init__(self, config):
          pass

      def predict(self, payload, query_params):
          behave = query_params.get("behave", "echo")
          if behave == "echo":
              return {"got": payload, "arr": np.arange(2), "f": np.float32(0.25)}
          if behave == "text":
              return "some text"
          if behave == "bytes":
              return b"\\x00" * 5
          if behave == "label":
              return payload
          if behave == "keyed":
              return {"label": payload, "score": 0.5}
          if behave == "np-int":
              return np.int64(payload)
          if behave == "keyed-np":
              return {"label": np.int64(payload)}
          if behave == "value":
              return np.float32(payload) if query_params.get("np") else payload
          raise ValueError(behave)
`;

describe('?debug=true with a PythonPredictor', () => {
  let t: PythonReplica;
  before(async () => {
    t = await startPythonReplica({ files: { 'predictor.py': PREDICTOR } });
  });
  after(() => t[Symbol.asyncDispose]());

  const cases: { name: string; query: string; body: string; type?: string; want: [string, unknown][] }[] = [
    {
      name: 'JSON in, numpy values out',
      query: '?behave=echo&debug=true',
      body: '{"x": [1.5, 2]}',
      want: [
        ['raw sample', { x: [1.5, 2] }],
        ['inference', { got: { x: [1.5, 2] }, arr: [0, 1], f: 0.25 }],
      ],
    },
    { name: 'a text answer', query: '?behave=text&debug=true', body: 'in', type: 'text/plain', want: [['raw sample', 'in'], ['inference', 'some text']] },
    { name: 'bytes in and out', query: '?behave=bytes&debug=true', body: 'abc', type: 'application/octet-stream', want: [['raw sample', { bytes: 3 }], ['inference', '<5 bytes>']] },
    { name: 'debug=false logs nothing', query: '?behave=echo&debug=false', body: '{}', want: [] },
  ];
  for (const c of cases) {
    test(`${c.name}: stages in order under the request id`, async () => {
      const r = await t.post(c.query, c.body, c.type ?? 'application/json');
      assert.equal(r.status, 200, r.text);
      const stages = t.linesOf(String(r.headers['x-request-id'])).filter((l) => l.msg === 'debug stage');
      assert.deepEqual(
        stages.map((l) => [l.stage, l.value]),
        c.want,
      );
      assert.ok(stages.every((l) => l.level === 30), 'at info level');
    });
  }
});

/** Sums the monitoring of samples published since `from`. */
function monitoringSince(samples: readonly MetricSample[], from: number): { classes: Record<string, number>; count: number; sum: number; min: number; max: number } {
  const out = { classes: {} as Record<string, number>, count: 0, sum: 0, min: Infinity, max: -Infinity };
  for (const s of samples.slice(from)) {
    const m = s.monitoring;
    if (m?.modelType === 'classification') for (const [k, v] of Object.entries(m.classes)) out.classes[k] = (out.classes[k] ?? 0) + v;
    if (m?.modelType === 'regression') {
      out.count += m.count;
      out.sum += m.sum;
      out.min = Math.min(out.min, m.min);
      out.max = Math.max(out.max, m.max);
    }
  }
  return out;
}

const monitoringCases: {
  name: string;
  monitoring: MonitoringSpec;
  requests: { query: string; body: unknown }[];
  /** Requests whose value monitoring cannot use (the replica warns once). */
  unusable?: { query: string; body: unknown }[];
  done: (m: ReturnType<typeof monitoringSince>) => boolean;
  want: (m: ReturnType<typeof monitoringSince>) => unknown;
  wantValue: unknown;
}[] = [
  {
    name: 'classification: string labels, integers and numpy integers',
    monitoring: { modelType: 'classification' },
    requests: [
      { query: '?behave=label', body: 'cat' },
      { query: '?behave=label', body: 'cat' },
      { query: '?behave=label', body: 'dog' },
      { query: '?behave=label', body: 3 },
      { query: '?behave=np-int', body: 3 },
    ],
    unusable: [{ query: '?behave=label', body: { not: 'a label' } }],
    done: (m) => Object.values(m.classes).reduce((a, b) => a + b, 0) >= 5,
    want: (m) => m.classes,
    wantValue: { cat: 2, dog: 1, '3': 2 },
  },
  {
    name: 'classification with key: the label inside a dict (a numpy integer too)',
    monitoring: { modelType: 'classification', key: 'label' },
    requests: [
      { query: '?behave=keyed', body: 'setosa' },
      { query: '?behave=keyed', body: 'virginica' },
      { query: '?behave=keyed', body: 'setosa' },
      { query: '?behave=keyed-np', body: 1 },
    ],
    unusable: [{ query: '?behave=label', body: 'a bare string, no key' }],
    done: (m) => Object.values(m.classes).reduce((a, b) => a + b, 0) >= 4,
    want: (m) => m.classes,
    wantValue: { setosa: 2, virginica: 1, '1': 1 },
  },
  {
    name: 'regression: numbers and numpy floats',
    monitoring: { modelType: 'regression' },
    requests: [
      { query: '?behave=value', body: 1.5 },
      { query: '?behave=value&np=1', body: 4.5 },
      { query: '?behave=value', body: -2 },
    ],
    unusable: [{ query: '?behave=value', body: 'nan?' }],
    done: (m) => m.count >= 3,
    want: (m) => ({ count: m.count, sum: m.sum, min: m.min, max: m.max }),
    wantValue: { count: 3, sum: 4, min: -2, max: 4.5 },
  },
];

describe('prediction monitoring with a PythonPredictor', () => {
  const replicas: PythonReplica[] = [];
  before(async () => {
    replicas.push(...(await Promise.all(monitoringCases.map((c) => startPythonReplica({ files: { 'predictor.py': PREDICTOR }, spec: () => ({ monitoring: c.monitoring }) })))));
  });
  after(() => Promise.all(replicas.map((t) => t[Symbol.asyncDispose]())));

  for (const [i, c] of monitoringCases.entries()) {
    test(`${c.name}: the replica's samples carry them`, async () => {
      const t = replicas[i];
      const from = t.transport.published.length;
      for (const q of [...c.requests, ...(c.unusable ?? [])]) {
        const r = await t.postJson(q.body, q.query);
        assert.equal(r.status, 200, r.text);
      }
      await waitFor('the monitored values in samples', () => c.done(monitoringSince(t.transport.published, from)), 20_000);
      assert.deepEqual(c.want(monitoringSince(t.transport.published, from)), c.wantValue);
      assert.ok(t.transport.published.slice(from).every((s) => s.ready && s.api === 'test-api'));
      if (c.unusable) {
        await waitFor('the monitoring warning', () => t.log.lines().some((l) => l.level === 40 && String(l.msg).startsWith('prediction has no value prediction monitoring can use')), 20_000);
      }
    });
  }
});
