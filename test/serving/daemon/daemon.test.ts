/**
 * The Daemon wired to in-memory fakes (orchestrator, gateway, transports, autoscaler) and a real
 * StateStore in a temporary folder: which events it publishes for replica, status, rollout and
 * autoscaler changes, what the read views and the Prometheus text say. Time is a ManualClock.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { pino } from 'pino';
import { BehaviorSubject, of, Subject, type Observable } from 'rxjs';
import type { ApiSpec } from '../../../core/config/api-spec.js';
import { ManualClock } from '../../../core/clock.js';
import type { EngineEvent } from '../../../core/events/engine-event.js';
import type { MetricSample } from '../../../core/metrics/metric-sample.js';
import type { EventBus } from '../../../core/ports/event-bus.js';
import type { MetricsTransport } from '../../../core/ports/metrics-transport.js';
import type { ApiDeployment, ApiReplicaStatus, OrchestratorTarget, ReplicaInfo } from '../../../core/ports/orchestrator-target.js';
import type { ApiAutoscaler, AutoscalerTickView } from '../../../serving/daemon/api-autoscaler.js';
import { Daemon } from '../../../serving/daemon/daemon.js';
import { StateStore } from '../../../serving/daemon/state-store.js';
import { apiSpecFixture } from '../../harness/api-spec-fixture.js';

const stats = () => ({ published: 0, received: 0, invalid: 0, dropped: 0 });

class FakeOrchestrator implements OrchestratorTarget {
  readonly kind = 'fake';
  readonly list = new BehaviorSubject<readonly ReplicaInfo[]>([]);
  readonly statuses = new Map<string, ApiReplicaStatus>();
  readonly applied: ApiDeployment[] = [];
  readonly scaled: Array<[string, number]> = [];
  readonly replicaEvents = new Subject<EngineEvent>();
  async start(): Promise<void> {}
  async close(): Promise<void> {}
  async apply(d: ApiDeployment): Promise<void> {
    this.applied.push(d);
  }
  async scale(api: string, n: number): Promise<void> {
    this.scaled.push([api, n]);
  }
  async remove(api: string): Promise<void> {
    this.statuses.delete(api);
  }
  status(api: string): ApiReplicaStatus | undefined {
    return this.statuses.get(api);
  }
  replicas$(): Observable<readonly ReplicaInfo[]> {
    return this.list.asObservable();
  }
  logs$(): Observable<string> {
    return of('a line');
  }
  events$(): Observable<EngineEvent> {
    return this.replicaEvents.asObservable();
  }
  /** Sets the statuses first (the daemon reads them while it handles the list), then the list. */
  push(list: readonly ReplicaInfo[], statuses: Readonly<Record<string, Partial<ApiReplicaStatus>>> = {}): void {
    for (const [api, s] of Object.entries(statuses)) this.statuses.set(api, status(api, s));
    this.list.next(list);
  }
}

function status(api: string, s: Partial<ApiReplicaStatus>): ApiReplicaStatus {
  return { api, revision: 'r', requested: 1, upToDate: 0, stale: 0, pending: 0, starting: 0, failed: 0, crashLooping: false, computeUnavailable: false, lastLogLines: [], ...s };
}

class FakeAutoscaler implements ApiAutoscaler {
  readonly ticks = new Subject<AutoscalerTickView>();
  readonly ticks$ = this.ticks.asObservable();
  replicas: number;
  closed = false;
  constructor(replicas: number) {
    this.replicas = replicas;
  }
  setReplicas(n: number): void {
    this.replicas = n;
  }
  reconfigure(): void {}
  state(): unknown {
    return { replicas: this.replicas };
  }
  close(): void {
    this.closed = true;
  }
}

function tick(over: Partial<AutoscalerTickView>): AutoscalerTickView {
  return { t: 0, policy: 'cortex', metricsAvailable: true, avgInFlight: 3, raw: 3, recommendation: 3, from: 1, to: 1, panic: false, reason: 'steady', ...over };
}

function sample(over: Partial<MetricSample>): MetricSample {
  return { v: 1, api: 'iris', replica: 'iris-0', revision: 'r', seq: 0, t: 0, intervalMs: 1000, inFlight: 0, inFlightMax: 0, requests: { '2xx': 0, '4xx': 0, '5xx': 0 }, latencyMsSum: 0, ready: true, ...over };
}

function replica(id: string, state: ReplicaInfo['state'], over: Partial<ReplicaInfo> = {}): ReplicaInfo {
  return { id, api: 'iris', revision: 'rev1', state, createdAt: 0, ...over };
}

const bundle = { configFile: 'myelin.yaml', files: [{ path: 'myelin.yaml', data: Buffer.from('- name: iris\n').toString('base64') }] };

interface Harness {
  readonly daemon: Daemon;
  readonly orch: FakeOrchestrator;
  readonly clock: ManualClock;
  readonly published: EngineEvent[];
  readonly samples: Subject<MetricSample>;
  readonly autoscalers: FakeAutoscaler[];
  readonly store: StateStore;
  specs: ApiSpec[];
  /** Events published since the last call, without the volatile `t`. */
  take(): Array<Record<string, unknown>>;
}

let dir: string;
let h: Harness;

async function harness(specs: ApiSpec[]): Promise<Harness> {
  const orch = new FakeOrchestrator();
  const clock = new ManualClock(1_000);
  const published: EngineEvent[] = [];
  const samples = new Subject<MetricSample>();
  const autoscalers: FakeAutoscaler[] = [];
  const store = new StateStore(join(dir, 'state'));
  const metrics: MetricsTransport = { kind: 'fake', start: async () => {}, close: async () => {}, publish: () => {}, samples$: () => samples.asObservable(), stats };
  const events: EventBus = { kind: 'fake', start: async () => {}, close: async () => {}, publish: (e) => published.push(e), events$: () => of(), stats };
  let seen = 0;
  const self: Harness = {
    orch,
    clock,
    published,
    samples,
    autoscalers,
    store,
    specs,
    daemon: new Daemon({
      store,
      orchestrator: orch,
      gateway: { upsertApi: async () => {}, removeApi: async () => {}, urlFor: (s) => `http://127.0.0.1:8888${s.networking.endpoint}` },
      metrics,
      events,
      autoscalers: {
        create: (_spec, o) => {
          const a = new FakeAutoscaler(o.replicas);
          autoscalers.push(a);
          return a;
        },
      },
      loadSpecs: async () => ({ specs: self.specs, warnings: [] }),
      servedPredictorTypes: ['javascript', 'onnx'],
      clock,
      log: pino({ level: 'silent' }),
      onShutdown: () => {},
    }),
    take() {
      const out = published.slice(seen).map(({ t: _t, ...rest }) => rest as Record<string, unknown>);
      seen = published.length;
      return out;
    },
  };
  return self;
}

const iris = (over: Parameters<typeof apiSpecFixture>[0] = {}): ApiSpec =>
  apiSpecFixture({ name: 'iris', projectDir: '/p', predictor: { env: { TOKEN: 'secret', MYELIN_PYTHON: '/venv/bin/python' } }, autoscaling: { minReplicas: 1, maxReplicas: 5, initReplicas: 1, targetReplicaConcurrency: 2 }, ...over });

/**
 * Waits for the work ticks queued (a tick is applied through the daemon's queue, as deploy and
 * delete are): a delete of an unknown API goes through that queue last and fails.
 */
async function settle(): Promise<void> {
  await h.daemon.delete('not-deployed').catch(() => undefined);
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-daemon-'));
  h = await harness([iris()]);
  await h.daemon.start();
});

afterEach(async () => {
  await h.daemon.close();
  await rm(dir, { recursive: true, force: true });
});

async function deployIris(): Promise<string> {
  const res = await h.daemon.deploy(bundle, { force: false });
  assert.equal(res.results[0]!.action, 'created');
  return res.results[0]!.revision;
}

describe('Daemon events', () => {
  test('a deploy publishes api.deployed, then the status the orchestrator reports', async () => {
    const revision = await deployIris();
    assert.deepEqual(h.take(), [
      { v: 1, type: 'api.deployed', api: 'iris', revision, action: 'created' },
      { v: 1, type: 'api.status', api: 'iris', status: 'unknown' },
    ]);
    assert.deepEqual(h.orch.applied.map((d) => [d.spec.name, d.revision, d.replicas]), [['iris', revision, 1]]);
  });

  test('replica transitions become replica.* events, then the status changes', async () => {
    await deployIris();
    h.take();
    h.orch.push([replica('a', 'pending')], { iris: { starting: 0, pending: 1 } });
    h.orch.push([replica('a', 'starting')], { iris: { starting: 1 } });
    h.orch.push([replica('a', 'ready')], { iris: { upToDate: 1 } });
    h.orch.push([replica('a', 'crashed', { exitCode: 1, crashReason: 'exit code 1; last output:\nboom' }), replica('b', 'ready')], { iris: { upToDate: 1 } });
    h.orch.push([replica('a', 'crashed', { exitCode: 1, crashReason: 'exit code 1; last output:\nboom' }), replica('b', 'ready'), replica('c', 'starting')], { iris: { upToDate: 1 } });
    h.orch.push([replica('c', 'terminating')], { iris: { upToDate: 0, requested: 1, crashLooping: true, message: 'replicas keep crashing' } });
    h.orch.push([], { iris: { upToDate: 0, requested: 1 } });
    const base = { v: 1, api: 'iris', revision: 'rev1' };
    assert.deepEqual(h.take(), [
      { v: 1, type: 'api.status', api: 'iris', status: 'updating' },
      { ...base, replica: 'a', type: 'replica.started' },
      { ...base, replica: 'a', type: 'replica.ready' },
      { v: 1, type: 'api.status', api: 'iris', status: 'live' },
      { ...base, replica: 'a', type: 'replica.crashed', exitCode: 1, signal: null, reason: 'exit code 1; last output:\nboom' },
      { ...base, replica: 'b', type: 'replica.started' },
      { ...base, replica: 'b', type: 'replica.ready' },
      { ...base, replica: 'c', type: 'replica.started' },
      { ...base, replica: 'b', type: 'replica.stopped' },
      { v: 1, type: 'api.status', api: 'iris', status: 'error', message: 'replicas keep crashing' },
      { ...base, replica: 'c', type: 'replica.stopped' },
      { v: 1, type: 'api.status', api: 'iris', status: 'updating' },
    ]);
  });

  test('a crash without a reason says how the replica ended', async () => {
    await deployIris();
    h.orch.push([replica('a', 'ready'), replica('b', 'ready'), replica('c', 'ready')]);
    h.take();
    h.orch.push([replica('a', 'crashed', { signal: 'SIGKILL', exitCode: null }), replica('b', 'crashed', { exitCode: 3 }), replica('c', 'crashed')]);
    const crashed = h.take().filter((e) => e.type === 'replica.crashed');
    assert.deepEqual(
      crashed.map((e) => [e.replica, e.exitCode, e.signal, e.reason]),
      [
        ['a', null, 'SIGKILL', 'killed by SIGKILL'],
        ['b', 3, null, 'exit code 3'],
        ['c', null, null, 'exited unexpectedly'],
      ],
    );
  });

  test('a rollout publishes rollout.progress while old replicas serve, and once when they are gone', async () => {
    const revision = await deployIris();
    h.orch.push([replica('old', 'ready')], { iris: { upToDate: 1 } });
    h.take();
    const roll = { v: 1, type: 'rollout.progress', api: 'iris', revision };
    h.orch.push([replica('old', 'ready'), replica('new', 'starting')], { iris: { upToDate: 0, stale: 1 } });
    h.orch.push([replica('old', 'ready'), replica('new', 'starting')], { iris: { upToDate: 0, stale: 1 } });
    h.orch.push([replica('old', 'ready'), replica('new', 'ready')], { iris: { upToDate: 1, stale: 1 } });
    h.orch.push([replica('old', 'terminating'), replica('new', 'ready')], { iris: { upToDate: 1, stale: 0 } });
    h.orch.push([replica('new', 'ready')], { iris: { upToDate: 1, stale: 0 } });
    assert.deepEqual(
      h.take().filter((e) => e.type === 'rollout.progress' || e.type === 'api.status'),
      [
        { v: 1, type: 'api.status', api: 'iris', status: 'updating' },
        { ...roll, updated: 0, stale: 1, requested: 1 },
        { v: 1, type: 'api.status', api: 'iris', status: 'live' },
        { ...roll, updated: 1, stale: 1, requested: 1 },
        { ...roll, updated: 1, stale: 0, requested: 1 },
      ],
    );
  });

  test('what the orchestrator reports about replicas is published as it is', async () => {
    h.take();
    const e: EngineEvent = { v: 1, type: 'model.version', api: 'iris', t: 5, replica: 'a', model: 'm', version: '2', action: 'loaded' } as unknown as EngineEvent;
    h.orch.replicaEvents.next(e);
    assert.deepEqual(h.published.at(-1), e);
    assert.deepEqual(h.daemon.recentEvents({ sinceMs: 5 }), [e]);
  });

  test('ticks: metrics.unavailable once per outage, a decision is published and applied', async () => {
    await deployIris();
    h.take();
    const a = h.autoscalers[0]!;
    a.ticks.next(tick({ t: 10, metricsAvailable: false, avgInFlight: null, raw: null, recommendation: null, reason: 'no samples' }));
    a.ticks.next(tick({ t: 20, metricsAvailable: false, avgInFlight: null, raw: null, recommendation: null, reason: 'no samples' }));
    a.ticks.next(tick({ t: 30, metricsAvailable: true }));
    a.ticks.next(tick({ t: 40, metricsAvailable: false, reason: 'stale' }));
    a.ticks.next(tick({ t: 50, from: 1, to: 3, avgInFlight: 5.5, raw: 2.75, recommendation: 3, reason: 'scale up' }));
    await settle();
    assert.deepEqual(h.published.filter((e) => e.type !== 'api.status').map((e) => ({ ...e })), [
      ...h.published.filter((e) => e.type === 'api.deployed'),
      { v: 1, type: 'metrics.unavailable', api: 'iris', t: 10, replicas: 1, reason: 'no samples' },
      { v: 1, type: 'metrics.unavailable', api: 'iris', t: 40, replicas: 1, reason: 'stale' },
      { v: 1, type: 'scaling.decided', api: 'iris', t: 50, from: 1, to: 3, policy: 'cortex', avgInFlight: 5.5, target: 2, raw: 2.75, recommendation: 3, reason: 'scale up' },
    ]);
    assert.deepEqual(h.orch.scaled, [['iris', 3]]);
    assert.equal((await h.store.listApis()).find((s) => s.name === 'iris')?.replicas, 3);
    assert.deepEqual(await h.store.getAutoscalerState('iris'), { replicas: 1 });
    const detail = await h.daemon.get('iris');
    assert.deepEqual(detail.autoscaler, {
      policy: 'cortex',
      avgInFlight: 5.5,
      target: 2,
      raw: 2.75,
      recommendation: 3,
      lastDecision: { t: 50, from: 1, to: 3, reason: 'scale up' },
      lastTick: { t: 50, reason: 'scale up' },
    });
    assert.equal(detail.requested, 3);
  });
});

describe('Daemon views', () => {
  test('get: redacted spec, replicas, request counts, monitoring; list sorted', async () => {
    h.specs = [iris({ monitoring: { modelType: 'classification' } })];
    const revision = await deployIris();
    h.orch.push([replica('a', 'ready', { pid: 42 }), replica('b', 'pending', { pendingReason: 'compute unavailable' }), replica('x', 'ready', { api: 'other' })], {
      iris: { upToDate: 1, stale: 0, requested: 2, failed: 1, lastLogLines: ['l1'] },
    });
    h.samples.next(sample({ replica: 'a', inFlight: 2, requests: { '2xx': 3, '4xx': 1, '5xx': 0 }, latencyMsSum: 40, monitoring: { modelType: 'classification', classes: { setosa: 2 } } }));
    h.samples.next(sample({ replica: 'b', inFlight: 1, requests: { '2xx': 0, '4xx': 0, '5xx': 4 }, latencyMsSum: 0, monitoring: { modelType: 'classification', classes: { setosa: 1, virginica: 1 } } }));
    h.samples.next(sample({ api: 'nobody', requests: { '2xx': 9, '4xx': 0, '5xx': 0 } }));
    const d = await h.daemon.get('iris');
    assert.deepEqual(d.replicas, [
      { id: 'a', revision: 'rev1', state: 'ready', pid: 42 },
      { id: 'b', revision: 'rev1', state: 'pending', pendingReason: 'compute unavailable' },
    ]);
    assert.deepEqual((d.spec as ApiSpec).predictor.env, { TOKEN: '<redacted>', MYELIN_PYTHON: '/venv/bin/python' });
    assert.deepEqual(
      { ...d, spec: undefined, replicas: undefined, autoscaler: undefined },
      {
        name: 'iris',
        status: 'live',
        endpoint: '/iris',
        url: 'http://127.0.0.1:8888/iris',
        revision,
        upToDate: 1,
        stale: 0,
        requested: 1,
        failed: 1,
        lastUpdated: 1_000,
        requests: { '2xx': 3, '4xx': 1, '5xx': 4, avgLatencyMs: 5 },
        monitoring: { modelType: 'classification', classes: { setosa: 3, virginica: 1 } },
        lastLogLines: ['l1'],
        spec: undefined,
        replicas: undefined,
        autoscaler: undefined,
      },
    );
    assert.deepEqual(d.autoscaler, { policy: 'cortex', avgInFlight: null, target: 2, raw: null, recommendation: null, lastDecision: null, lastTick: null });
    const [summary] = await h.daemon.list();
    const { spec: _s, replicas: _r, autoscaler: _a, monitoring: _m, lastLogLines: _l, ...want } = d;
    assert.deepEqual(summary, want);
    await assert.rejects(h.daemon.get('nope'), { name: 'NotFoundError' });
  });

  test('regression monitoring merges count, min, max and mean', async () => {
    h.specs = [iris({ monitoring: { modelType: 'regression' } })];
    await deployIris();
    assert.deepEqual((await h.daemon.get('iris')).monitoring, { modelType: 'regression', count: 0, min: null, max: null, avg: null });
    h.samples.next(sample({ monitoring: { modelType: 'regression', count: 2, min: 1, max: 3, sum: 4 } }));
    h.samples.next(sample({ monitoring: { modelType: 'regression', count: 0, min: 0, max: 0, sum: 0 } }));
    h.samples.next(sample({ monitoring: { modelType: 'classification', classes: { a: 1 } } }));
    h.samples.next(sample({ monitoring: { modelType: 'regression', count: 2, min: -1, max: 2, sum: 8 } }));
    assert.deepEqual((await h.daemon.get('iris')).monitoring, { modelType: 'regression', count: 4, min: -1, max: 3, avg: 3 });
  });

  test('an API that cannot be restored is listed as error until deleted', async () => {
    await deployIris();
    await h.daemon.close();
    h = await harness([]);
    await h.daemon.start();
    const msg = 'could not restore it: iris is no longer in myelin.yaml';
    assert.deepEqual(h.take(), [{ v: 1, type: 'api.status', api: 'iris', status: 'error', message: msg }]);
    const [s] = await h.daemon.list();
    assert.deepEqual({ ...s, revision: 'x', lastUpdated: 0 }, {
      name: 'iris',
      status: 'error',
      message: msg,
      endpoint: '-',
      url: '',
      revision: 'x',
      upToDate: 0,
      stale: 0,
      requested: 1,
      failed: 0,
      lastUpdated: 0,
      requests: { '2xx': 0, '4xx': 0, '5xx': 0, avgLatencyMs: null },
    });
    const d = await h.daemon.get('iris');
    assert.deepEqual({ spec: d.spec, replicas: d.replicas, autoscaler: d.autoscaler, lastLogLines: d.lastLogLines }, {
      spec: null,
      replicas: [],
      autoscaler: { policy: '-', avgInFlight: null, target: 0, raw: null, recommendation: null, lastDecision: null, lastTick: null },
      lastLogLines: [],
    });
    await h.daemon.delete('iris');
    assert.deepEqual(h.take(), [{ v: 1, type: 'api.deleted', api: 'iris' }]);
    assert.deepEqual(await h.daemon.list(), []);
  });
});

describe('Daemon metrics', () => {
  test('Prometheus text: responses, replica gauges, autoscaler gauges; removed with the API', async () => {
    await deployIris();
    h.orch.push([replica('a', 'ready'), replica('b', 'ready')], { iris: { upToDate: 1, stale: 1, requested: 2 } });
    h.samples.next(sample({ replica: 'a', inFlight: 2, requests: { '2xx': 3, '4xx': 0, '5xx': 1 } }));
    h.samples.next(sample({ replica: 'b', inFlight: 1.5, requests: { '2xx': 2, '4xx': 0, '5xx': 0 } }));
    h.samples.next(sample({ replica: 'a', inFlight: 1 }));
    h.autoscalers[0]!.ticks.next(tick({ t: 10, to: 1, avgInFlight: 2.5, panic: true }));
    await settle();
    const text = await h.daemon.metrics();
    const series = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.deepEqual(series, [
      'myelin_api_responses_total{api="iris",code="2xx"} 5',
      'myelin_api_responses_total{api="iris",code="5xx"} 1',
      'myelin_api_desired_replicas{api="iris"} 1',
      'myelin_api_ready_replicas{api="iris"} 1',
      'myelin_api_stale_replicas{api="iris"} 1',
      'myelin_api_in_flight_requests{api="iris"} 2.5',
      'autoscaler_desired_pods{api="iris"} 1',
      'autoscaler_actual_pods{api="iris"} 2',
      'autoscaler_stable_request_concurrency{api="iris"} 2.5',
      'autoscaler_target_concurrency_per_pod{api="iris"} 2',
      'autoscaler_panic_mode{api="iris"} 1',
    ]);
    assert.match(text, /# HELP myelin_api_responses_total Responses by status class \(2xx, 4xx, 5xx\), as reported by the replicas\n# TYPE myelin_api_responses_total counter/);
    // A replica that leaves the list no longer counts in flight.
    h.orch.push([replica('a', 'ready')], { iris: { upToDate: 1, stale: 0, requested: 1 } });
    assert.match(await h.daemon.metrics(), /myelin_api_in_flight_requests\{api="iris"\} 1\n/);
    await h.daemon.delete('iris');
    const after = (await h.daemon.metrics()).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.deepEqual(after, []);
    assert.equal(h.autoscalers[0]!.closed, true);
  });
});
