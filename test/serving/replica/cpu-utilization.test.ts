// Issue 11, defect 1: `compute.cpu: null` (Cortex's "no CPU reserved") made the replica divide by a zero
// CPU request, so every metric sample carried cpuUtilization Infinity/NaN, the transport's validation
// rejected it and the autoscaler heard nothing. These tests publish through the real LocalMetricsTransport
// (isMetricSample, the schema's check), not the CollectingTransport that skips validation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import type { ApiSpec } from '../../../core/config/api-spec.js';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecs } from '../../../core/config/load-api-specs.js';
import { ManualClock } from '../../../core/clock.js';
import type { MetricSample } from '../../../core/metrics/metric-sample.js';
import { isMetricSample } from '../../../core/metrics/metric-sample-validator.js';
import { LocalMetricsTransport } from '../../../adapters/transport/local/local-metrics-transport.js';
import { cpuUtilization } from '../../../serving/replica/replica-sampler.js';
import { startReplica } from '../../../serving/replica/replica-server.js';
import { postJson, waitFor } from '../../harness/http-client.js';
import { makeProject } from '../../core/config/config-test-helpers.js';
import { captureLog } from './replica-test-kit.js';

const TS_API = (compute: string): string =>
  `- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: typescript\n    path: predictor.ts\n${compute}`;

function load(dir: string, yaml: string): ApiSpec {
  const { specs, warnings } = loadApiSpecs(yaml, { file: 'cortex.yaml', cwd: dir, probe: nodeProjectFileSystem });
  assert.deepEqual(warnings, []);
  return specs[0];
}

describe('cpuUtilization', () => {
  test('a fraction of the CPU request; absent without a request; never NaN, Infinity or negative', () => {
    assert.equal(cpuUtilization(100_000, 1000, 200), 0.5);
    assert.equal(cpuUtilization(100_000, 1000, 0), undefined);
    assert.equal(cpuUtilization(0, 1000, 0), undefined);
    assert.equal(cpuUtilization(100_000, 0, 200), undefined);
    assert.equal(cpuUtilization(Number.NaN, 1000, 200), undefined);
    assert.equal(cpuUtilization(100_000, 1000, Number.NaN), undefined);
    assert.equal(cpuUtilization(-5, 1000, 200), 0);
    assert.equal(cpuUtilization(Number.MAX_VALUE, 1e-300, 200), undefined, 'an overflow is no measurement, not Infinity');
  });
});

describe('a replica with compute.cpu: null publishes valid samples (real validation)', () => {
  for (const [name, compute, cpuMillis] of [
    ['cpu: null', '  compute:\n    cpu: null\n', 0],
    ['cpu omitted (200m)', '', 200],
  ] as const) {
    test(name, async () => {
      using project = makeProject({ 'predictor.ts': 'export class Predictor { predict() { return 1; } }\n' });
      const spec = load(project.dir, TS_API(compute));
      assert.equal(spec.compute.cpuMillis, cpuMillis);
      const transport = new LocalMetricsTransport(pino({ level: 'silent' }), new ManualClock(0));
      const got: MetricSample[] = [];
      const sub = transport.samples$('iris').subscribe((s) => got.push(s));
      const replica = await startReplica({ spec, log: captureLog().log, transport, sampleIntervalMs: 20 });
      try {
        await replica.ready;
        const r = await postJson({ port: replica.address.port! }, { x: 1 });
        assert.equal(r.status, 200, r.text);
        await waitFor('three samples', () => got.length >= 3);
      } finally {
        await replica.close({ graceMs: 0 });
        sub.unsubscribe();
        await transport.close();
      }
      assert.equal(transport.stats().invalid, 0, 'no sample was rejected by the validation');
      for (const s of got) {
        assert.ok(isMetricSample(s));
        if (cpuMillis === 0) assert.equal(s.cpuUtilization, undefined, 'no CPU request: nothing to measure against');
        // The last sample, published at close, may cover 0 ms (taken in the same millisecond as the one
        // before): no interval, no utilization to report (cpuUtilization in replica-sampler.ts).
        else if (s.intervalMs > 0) assert.ok(Number.isFinite(s.cpuUtilization) && s.cpuUtilization! >= 0, String(s.cpuUtilization));
        else assert.equal(s.cpuUtilization, undefined);
      }
    });
  }

  test('the loader still refuses the cpu policy without a CPU request, with file:line', () => {
    using project = makeProject({ 'predictor.ts': 'export class Predictor { predict() { return 1; } }\n' });
    assert.throws(
      () => loadApiSpecs(TS_API('  compute:\n    cpu: null\n  autoscaling:\n    policy: cpu\n'), { file: 'cortex.yaml', cwd: project.dir, probe: nodeProjectFileSystem }),
      /compute\.cpu: the cpu scaling policy needs a CPU request/,
    );
  });
});
