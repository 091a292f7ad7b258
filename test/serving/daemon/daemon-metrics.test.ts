import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MetricSample } from '../../../core/metrics/metric-sample.js';
import type { ApiReplicaStatus } from '../../../core/ports/orchestrator-target.js';
import type { AutoscalerTickView } from '../../../serving/daemon/api-autoscaler.js';
import { DaemonMetrics } from '../../../serving/daemon/daemon-metrics.js';

function sample(over: Partial<MetricSample>): MetricSample {
  return { v: 1, api: 'iris', replica: 'a', revision: 'r', seq: 0, t: 0, intervalMs: 1000, inFlight: 0, inFlightMax: 0, requests: { '2xx': 0, '4xx': 0, '5xx': 0 }, latencyMsSum: 0, ready: true, ...over };
}

function tick(over: Partial<AutoscalerTickView>): AutoscalerTickView {
  return { t: 0, policy: 'burst', metricsAvailable: true, avgInFlight: 1, raw: 1, recommendation: 1, from: 1, to: 1, panic: false, reason: '', ...over };
}

function status(over: Partial<ApiReplicaStatus>): ApiReplicaStatus {
  return { api: 'iris', revision: 'r', requested: 1, upToDate: 0, stale: 0, pending: 0, starting: 0, failed: 0, crashLooping: false, computeUnavailable: false, lastLogLines: [], ...over };
}

/** The sample lines of the exposition (no HELP/TYPE). */
async function series(m: DaemonMetrics): Promise<string[]> {
  return (await m.text()).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

describe('DaemonMetrics', () => {
  test('declares every series with its help and type, in a fixed order', async () => {
    const text = await new DaemonMetrics().text();
    const declared = text.split('\n').filter((l) => l.startsWith('# TYPE')).map((l) => l.slice('# TYPE '.length));
    assert.deepEqual(declared, [
      'myelin_api_responses_total counter',
      'myelin_api_desired_replicas gauge',
      'myelin_api_ready_replicas gauge',
      'myelin_api_stale_replicas gauge',
      'myelin_api_in_flight_requests gauge',
      'autoscaler_desired_pods gauge',
      'autoscaler_actual_pods gauge',
      'autoscaler_stable_request_concurrency gauge',
      'autoscaler_target_concurrency_per_pod gauge',
      'autoscaler_panic_mode gauge',
    ]);
    assert.match(text, /# HELP autoscaler_panic_mode 1 while the burst policy is panicking, else 0\n/);
  });

  test('responses count up by class; in flight is the sum of the latest sample of each replica', async () => {
    const m = new DaemonMetrics();
    m.addApi('iris');
    m.recordSample(sample({ replica: 'a', inFlight: 4, requests: { '2xx': 2, '4xx': 0, '5xx': 1 } }));
    m.recordSample(sample({ replica: 'b', inFlight: 0.5, requests: { '2xx': 1, '4xx': 3, '5xx': 0 } }));
    m.recordSample(sample({ replica: 'a', inFlight: 1 }));
    assert.deepEqual(await series(m), [
      'myelin_api_responses_total{api="iris",code="2xx"} 3',
      'myelin_api_responses_total{api="iris",code="5xx"} 1',
      'myelin_api_responses_total{api="iris",code="4xx"} 3',
      'myelin_api_in_flight_requests{api="iris"} 1.5',
    ]);
    m.forgetReplica('iris', 'a');
    assert.ok((await series(m)).includes('myelin_api_in_flight_requests{api="iris"} 0.5'));
  });

  test('an added API shows 0 in flight before any sample; samples of other APIs are ignored', async () => {
    const m = new DaemonMetrics();
    m.addApi('iris');
    m.recordSample(sample({ api: 'other', inFlight: 3, requests: { '2xx': 5, '4xx': 0, '5xx': 0 } }));
    m.forgetReplica('other', 'a');
    assert.deepEqual(await series(m), ['myelin_api_in_flight_requests{api="iris"} 0']);
  });

  test('ticks and replica counts set the gauges; avgInFlight null keeps the last value', async () => {
    const m = new DaemonMetrics();
    m.recordTick('iris', tick({ to: 3, panic: true, avgInFlight: 7.5 }), 2);
    m.recordTick('iris', tick({ to: 4, panic: false, avgInFlight: null }), 2);
    m.recordReplicas('iris', 4, status({ upToDate: 2, stale: 1 }));
    m.recordReplicas('gone', 1, undefined);
    assert.deepEqual(await series(m), [
      'myelin_api_desired_replicas{api="iris"} 4',
      'myelin_api_desired_replicas{api="gone"} 1',
      'myelin_api_ready_replicas{api="iris"} 2',
      'myelin_api_ready_replicas{api="gone"} 0',
      'myelin_api_stale_replicas{api="iris"} 1',
      'myelin_api_stale_replicas{api="gone"} 0',
      'autoscaler_desired_pods{api="iris"} 4',
      'autoscaler_actual_pods{api="iris"} 3',
      'autoscaler_actual_pods{api="gone"} 0',
      'autoscaler_stable_request_concurrency{api="iris"} 7.5',
      'autoscaler_target_concurrency_per_pod{api="iris"} 2',
      'autoscaler_panic_mode{api="iris"} 0',
    ]);
  });

  test('removeApi drops every series of that API only; adding it again starts from nothing', async () => {
    const m = new DaemonMetrics();
    for (const api of ['iris', 'other']) {
      m.addApi(api);
      m.recordSample(sample({ api, inFlight: 2, requests: { '2xx': 1, '4xx': 1, '5xx': 1 } }));
      m.recordTick(api, tick({ to: 2 }), 1);
      m.recordReplicas(api, 2, status({ upToDate: 2 }));
    }
    m.removeApi('iris');
    const left = await series(m);
    assert.equal(left.some((l) => l.includes('api="iris"')), false, left.join('\n'));
    assert.equal(left.filter((l) => l.includes('api="other"')).length, 12);
    m.addApi('iris');
    assert.ok((await series(m)).includes('myelin_api_in_flight_requests{api="iris"} 0'));
  });

  test('two instances never share series', async () => {
    const a = new DaemonMetrics();
    const b = new DaemonMetrics();
    a.addApi('iris');
    assert.deepEqual(await series(b), []);
  });
});
