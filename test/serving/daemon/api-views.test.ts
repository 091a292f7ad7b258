import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ApiReplicaStatus } from '../../../core/ports/orchestrator-target.js';
import type { AutoscalerTickView } from '../../../serving/daemon/api-autoscaler.js';
import { apiDetail, apiSummary, emptyMonitoring, mergeMonitoring, redactSpec, REDACTED, unrestoredDetail, unrestoredSummary, type ApiSummaryInput } from '../../../serving/daemon/api-views.js';
import type { MonitoringView } from '../../../serving/daemon/daemon-service.js';
import type { StoredApi } from '../../../serving/daemon/state-store.js';
import { apiSpecFixture } from '../../harness/api-spec-fixture.js';

const stored: StoredApi = { name: 'iris', projectDir: '/s/p', configFile: 'myelin.yaml', projectId: 'pid', deploymentNonce: 'n', revision: 'rev1', replicas: 3, lastUpdated: 100, created: 50 };
const spec = apiSpecFixture({ name: 'iris', predictor: { env: { TOKEN: 'secret', MYELIN_PYTHON: '/venv/bin/python', EMPTY: '' } }, autoscaling: { minReplicas: 1, maxReplicas: 5, initReplicas: 1, targetReplicaConcurrency: 4 } });

function rs(over: Partial<ApiReplicaStatus>): ApiReplicaStatus {
  return { api: 'iris', revision: 'rev1', requested: 3, upToDate: 0, stale: 0, pending: 0, starting: 0, failed: 0, crashLooping: false, computeUnavailable: false, lastLogLines: [], ...over };
}

const input = (over: Partial<ApiSummaryInput> = {}): ApiSummaryInput => ({
  spec,
  stored,
  replicaStatus: rs({ upToDate: 2, stale: 1, failed: 1 }),
  requests: { '2xx': 6, '4xx': 1, '5xx': 1, latencyMsSum: 80 },
  url: 'http://127.0.0.1:8888/iris',
  ...over,
});

describe('apiSummary', () => {
  test('counts from the orchestrator, requested from the daemon, mean latency over every response', () => {
    assert.deepEqual(apiSummary(input()), {
      name: 'iris',
      status: 'live',
      endpoint: '/iris',
      url: 'http://127.0.0.1:8888/iris',
      revision: 'rev1',
      upToDate: 2,
      stale: 1,
      requested: 3,
      failed: 1,
      lastUpdated: 100,
      requests: { '2xx': 6, '4xx': 1, '5xx': 1, avgLatencyMs: 10 },
    });
  });

  const cases: ReadonlyArray<{ name: string; status: ApiReplicaStatus | undefined; want: { status: string; message?: string } }> = [
    { name: 'unknown to the target', status: undefined, want: { status: 'unknown' } },
    { name: 'crash loop with a message', status: rs({ crashLooping: true, message: 'replicas keep crashing' }), want: { status: 'error', message: 'replicas keep crashing' } },
    { name: 'compute unavailable', status: rs({ computeUnavailable: true, message: 'no cpu' }), want: { status: 'compute unavailable', message: 'no cpu' } },
    { name: 'fewer ready than min', status: rs({ upToDate: 0 }), want: { status: 'updating' } },
  ];
  for (const c of cases) {
    test(`status: ${c.name}`, () => {
      const got = apiSummary(input({ replicaStatus: c.status }));
      assert.deepEqual({ status: got.status, ...(got.message !== undefined ? { message: got.message } : {}) }, c.want);
      if (c.status === undefined) assert.deepEqual([got.upToDate, got.stale, got.failed], [0, 0, 0]);
    });
  }

  test('no responses: mean latency null', () => {
    assert.equal(apiSummary(input({ requests: { '2xx': 0, '4xx': 0, '5xx': 0, latencyMsSum: 0 } })).requests.avgLatencyMs, null);
  });
});

describe('apiDetail', () => {
  const t: AutoscalerTickView = { t: 9, policy: 'cortex', metricsAvailable: true, avgInFlight: 6, raw: 1.5, recommendation: 2, from: 1, to: 2, panic: false, reason: 'up' };
  test('the summary, the redacted spec, the API’s own replicas, the last tick and decision, the last log lines', () => {
    const d = apiDetail({
      ...input({ replicaStatus: rs({ upToDate: 2, lastLogLines: ['x'] }) }),
      replicas: [
        { id: 'a', api: 'iris', revision: 'rev1', state: 'ready', pid: 7, createdAt: 0 },
        { id: 'o', api: 'other', revision: 'r', state: 'ready', createdAt: 0 },
        { id: 'b', api: 'iris', revision: 'rev1', state: 'pending', pendingReason: 'compute unavailable', createdAt: 0, address: { host: '127.0.0.1', port: 1 } },
      ],
      lastTick: t,
      lastDecision: { t: 9, from: 1, to: 2, reason: 'up' },
      monitoring: { modelType: 'classification', classes: { a: 1 } },
    });
    assert.deepEqual(d.replicas, [
      { id: 'a', revision: 'rev1', state: 'ready', pid: 7 },
      { id: 'b', revision: 'rev1', state: 'pending', pendingReason: 'compute unavailable' },
    ]);
    assert.deepEqual(d.autoscaler, { policy: 'cortex', avgInFlight: 6, target: 4, raw: 1.5, recommendation: 2, lastDecision: { t: 9, from: 1, to: 2, reason: 'up' }, lastTick: { t: 9, reason: 'up' } });
    assert.deepEqual(d.spec, redactSpec(spec));
    assert.deepEqual(d.monitoring, { modelType: 'classification', classes: { a: 1 } });
    assert.deepEqual(d.lastLogLines, ['x']);
    assert.equal(d.name, 'iris');
  });

  test('before the first tick, without monitoring, unknown to the target', () => {
    const d = apiDetail({ ...input({ replicaStatus: undefined }), replicas: [], lastTick: null, lastDecision: null });
    assert.deepEqual(d.autoscaler, { policy: 'cortex', avgInFlight: null, target: 4, raw: null, recommendation: null, lastDecision: null, lastTick: null });
    assert.equal(Object.hasOwn(d, 'monitoring'), false);
    assert.deepEqual(d.lastLogLines, []);
  });
});

describe('unrestored views', () => {
  test('status error with the reason; nothing served', () => {
    const s = unrestoredSummary(stored, 'could not restore it: gone');
    assert.deepEqual(s, {
      name: 'iris',
      status: 'error',
      message: 'could not restore it: gone',
      endpoint: '-',
      url: '',
      revision: 'rev1',
      upToDate: 0,
      stale: 0,
      requested: 3,
      failed: 0,
      lastUpdated: 100,
      requests: { '2xx': 0, '4xx': 0, '5xx': 0, avgLatencyMs: null },
    });
    assert.deepEqual(unrestoredDetail(stored, 'could not restore it: gone'), {
      ...s,
      spec: null,
      replicas: [],
      autoscaler: { policy: '-', avgInFlight: null, target: 0, raw: null, recommendation: null, lastDecision: null, lastTick: null },
      lastLogLines: [],
    });
  });
});

describe('redactSpec', () => {
  test('user values redacted (empty ones too), MYELIN_* kept, the rest of the spec untouched', () => {
    const got = redactSpec(spec);
    assert.deepEqual(got.predictor.env, { TOKEN: REDACTED, MYELIN_PYTHON: '/venv/bin/python', EMPTY: REDACTED });
    assert.deepEqual({ ...got, predictor: { ...got.predictor, env: {} } }, { ...spec, predictor: { ...spec.predictor, env: {} } });
    assert.equal(spec.predictor.env.TOKEN, 'secret');
  });
});

describe('monitoring view', () => {
  const cases: ReadonlyArray<{ name: string; cur: MonitoringView; s: Parameters<typeof mergeMonitoring>[1]; want: MonitoringView }> = [
    { name: 'classes are summed', cur: { modelType: 'classification', classes: { a: 1 } }, s: { modelType: 'classification', classes: { a: 2, b: 1 } }, want: { modelType: 'classification', classes: { a: 3, b: 1 } } },
    { name: 'first regression values', cur: emptyMonitoring('regression'), s: { modelType: 'regression', count: 2, min: 1, max: 3, sum: 4 }, want: { modelType: 'regression', count: 2, min: 1, max: 3, avg: 2 } },
    { name: 'count 2 mean 2 + count 2 sum 8 ⇒ count 4 mean 3', cur: { modelType: 'regression', count: 2, min: 1, max: 3, avg: 2 }, s: { modelType: 'regression', count: 2, min: -1, max: 2, sum: 8 }, want: { modelType: 'regression', count: 4, min: -1, max: 3, avg: 3 } },
    { name: 'a regression sample without values changes nothing', cur: emptyMonitoring('regression'), s: { modelType: 'regression', count: 0, min: 0, max: 0, sum: 0 }, want: emptyMonitoring('regression') },
    { name: 'the other model type changes nothing', cur: emptyMonitoring('classification'), s: { modelType: 'regression', count: 1, min: 1, max: 1, sum: 1 }, want: { modelType: 'classification', classes: {} } },
  ];
  for (const c of cases) test(c.name, () => assert.deepEqual(mergeMonitoring(c.cur, c.s), c.want));

  test('empty views', () => {
    assert.deepEqual(emptyMonitoring('classification'), { modelType: 'classification', classes: {} });
    assert.deepEqual(emptyMonitoring('regression'), { modelType: 'regression', count: 0, min: null, max: null, avg: null });
  });
});
