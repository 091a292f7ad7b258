/**
 * The `kubernetes` target against the in-process fake API server (SG 9.4): what it creates, how
 * scaling and rollouts reach Kubernetes, how pod changes come back through the watch, and how the
 * watch survives dropped connections. The fake itself is checked with kubectl in
 * fake-kube-api-kubectl.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Container } from 'inversify';
import { pino } from 'pino';
import { parseAllDocuments } from 'yaml';
import { firstValueFrom, lastValueFrom, toArray, filter, take, timeout } from 'rxjs';
import { OrchestratorError } from '../../../../core/errors.js';
import { Logger } from '../../../../core/ports/logger.js';
import { OrchestratorTarget, type ApiDeployment, type ReplicaInfo } from '../../../../core/ports/orchestrator-target.js';
import {
  KubernetesOrchestrator,
  KubernetesOrchestratorOptions,
  kubernetesOrchestratorModule,
} from '../../../../adapters/orchestrators/kubernetes/kubernetes-orchestrator-module.js';
import { apiSpecFixture, type ApiSpecOverrides } from '../../../harness/api-spec-fixture.js';
import { FakeKubeApi, requestAttributes, type FakeKubeApiOptions, type KubeObject } from '../../../harness/fake-kube-api.js';
import { CONTROL_PLANE_RULES, controlPlaneManifests, rulesAllow } from '../../../../adapters/orchestrators/kubernetes/control-plane-manifests.js';
import { waitFor } from './wait-for.js';

const log = pino({ level: 'silent' });

interface Rig extends AsyncDisposable {
  readonly fake: FakeKubeApi;
  readonly orch: KubernetesOrchestrator;
}

async function rig(fakeOptions: FakeKubeApiOptions = {}, options: KubernetesOrchestratorOptions = {}): Promise<Rig> {
  const fake = await FakeKubeApi.start(fakeOptions);
  const orch = new KubernetesOrchestrator(log, { server: fake.url, image: 'myelin/replica:test', watchRetryMs: 20, ...options });
  await orch.start();
  return {
    fake,
    orch,
    async [Symbol.asyncDispose]() {
      await orch.close();
      await fake.close();
    },
  };
}

function deployment(revision: string, replicas: number, overrides: ApiSpecOverrides = {}): ApiDeployment {
  return { spec: apiSpecFixture({ name: 'iris', ...overrides }), revision, replicas };
}

/** The first replica list that satisfies `want` (deadline 10 s). */
function replicasWhere(orch: KubernetesOrchestrator, what: string, want: (list: readonly ReplicaInfo[]) => boolean): Promise<readonly ReplicaInfo[]> {
  return firstValueFrom(
    orch.replicas$().pipe(
      filter(want),
      timeout({ first: 10_000, with: () => Promise.reject(new Error(`timed out waiting for replicas: ${what}`)) }),
    ),
  );
}

const podsOf = (fake: FakeKubeApi, revision?: string): KubeObject[] =>
  fake.list('pods', `myelin.dev/api=iris${revision ? `,myelin.dev/revision=${revision}` : ''}`).filter((p) => !p.metadata.deletionTimestamp);

test('the module binds OrchestratorTarget to KubernetesOrchestrator, kind kubernetes, with its options', async () => {
  await using fake = await FakeKubeApi.start();
  const container = new Container();
  container.bind(Logger).toConstantValue(log);
  container.bind<KubernetesOrchestratorOptions>(KubernetesOrchestratorOptions).toConstantValue({ server: fake.url, namespace: 'ml' });
  container.load(kubernetesOrchestratorModule);
  const target = container.get<OrchestratorTarget>(OrchestratorTarget);
  assert.ok(target instanceof KubernetesOrchestrator);
  assert.equal(target.kind, 'kubernetes');
  assert.equal(target.namespace, 'ml');
  assert.equal(container.get(KubernetesOrchestrator), target, 'one instance');
  await target.start();
  await target.close();
});

test('without options the module loads the default kubeconfig and takes its context namespace', async () => {
  await using fake = await FakeKubeApi.start();
  const dir = await mkdtemp(join(tmpdir(), 'myelin-kubeconfig-'));
  const saved = process.env.KUBECONFIG;
  try {
    await writeFile(join(dir, 'config'), fake.kubeconfig('from-context'));
    process.env.KUBECONFIG = join(dir, 'config');
    const container = new Container();
    container.bind(Logger).toConstantValue(log);
    container.load(kubernetesOrchestratorModule);
    const target = container.get<KubernetesOrchestrator>(OrchestratorTarget);
    assert.equal(target.namespace, 'from-context');
    await target.start();
    await target.apply(deployment('r1', 1));
    assert.equal(fake.list('deployments', '', 'from-context').length, 1);
    await target.close();
  } finally {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
    await rm(dir, { recursive: true, force: true });
  }
});

test('apply creates exactly one Deployment and one Service with resources, strategy, probes and the spec', async () => {
  await using r = await rig();
  const spec = {
    compute: { cpuMillis: 500, memBytes: 512 * 1024 ** 2, gpu: 1, inf: 0 },
    updateStrategy: { maxSurge: { kind: 'absolute', value: 1 }, maxUnavailable: { kind: 'percent', value: 0 } },
  } as const;
  await r.orch.apply(deployment('r1', 2, spec));
  assert.deepEqual(r.fake.list('deployments').map((d) => d.metadata.name), ['api-iris']);
  assert.deepEqual(r.fake.list('services').map((s) => s.metadata.name), ['api-iris']);
  const writes = r.fake.requests.filter((q) => q.method !== 'GET').map((q) => `${q.method} ${q.path}`);
  assert.deepEqual(writes, ['POST /apis/apps/v1/namespaces/default/deployments', 'POST /api/v1/namespaces/default/services']);

  const d = r.fake.get('deployments', 'api-iris')!;
  const c = d.spec.template.spec.containers[0];
  assert.deepEqual(
    {
      replicas: d.spec.replicas,
      strategy: d.spec.strategy,
      resources: c.resources,
      readiness: c.readinessProbe.httpGet,
      liveness: c.livenessProbe.httpGet,
      grace: d.spec.template.spec.terminationGracePeriodSeconds,
      image: c.image,
      revisionLabel: d.spec.template.metadata.labels['myelin.dev/revision'],
      specId: typeof d.metadata.annotations['myelin.dev/spec-id'],
    },
    {
      replicas: 2,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: '0%' } },
      resources: { requests: { cpu: '500m', memory: '512Mi', 'nvidia.com/gpu': '1' }, limits: { memory: '512Mi', 'nvidia.com/gpu': '1' } },
      readiness: { path: '/healthz/ready', port: 8888 },
      liveness: { path: '/healthz/live', port: 8888 },
      grace: 60,
      image: 'myelin/replica:test',
      revisionLabel: 'r1',
      specId: 'string',
    },
  );
  const env = Object.fromEntries((c.env as KubeObject[]).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
  assert.equal(JSON.parse(env.MYELIN_API_SPEC).name, 'iris');
  assert.equal(JSON.parse(env.MYELIN_API_SPEC).compute.gpu, 1);
  const svc = r.fake.get('services', 'api-iris')!;
  assert.deepEqual(svc.spec.ports, [{ name: 'http', port: 8888, targetPort: 8888, protocol: 'TCP' }]);
  assert.deepEqual(svc.spec.selector, { 'myelin.dev/api': 'iris' });
  assert.equal(podsOf(r.fake).length, 2, 'the fake controller made the pods');
  assert.equal(r.orch.status('iris')?.requested, 2);
});

test('apply with the same revision changes nothing in the pods; a changed autoscaling spec does not roll', async () => {
  await using r = await rig();
  await r.orch.apply(deployment('r1', 2));
  const before = r.fake.get('deployments', 'api-iris')!;
  const pods = podsOf(r.fake).map((p) => p.metadata.name);
  await r.orch.apply(deployment('r1', 2));
  await r.orch.apply(deployment('r1', 3, { autoscaling: { targetReplicaConcurrency: 8 } }));
  const after = r.fake.get('deployments', 'api-iris')!;
  assert.deepEqual(after.spec.template, before.spec.template, 'template untouched');
  assert.notEqual(after.metadata.annotations['myelin.dev/spec-id'], before.metadata.annotations['myelin.dev/spec-id'], 'spec id follows the spec');
  assert.equal(after.spec.replicas, 3);
  const now = podsOf(r.fake).map((p) => p.metadata.name);
  assert.deepEqual(now.filter((n) => pods.includes(n)).sort(), [...pods].sort(), 'no pod was replaced');
  assert.equal(new Set(podsOf(r.fake).map((p) => p.metadata.labels['pod-template-hash'])).size, 1, 'one pod template');
});

test('scale patches only spec.replicas through the scale subresource', async () => {
  await using r = await rig();
  await r.orch.apply(deployment('r1', 1));
  const before = r.fake.get('deployments', 'api-iris')!;
  const cases = [3, 0, 2];
  for (const want of cases) {
    await r.orch.scale('iris', want);
    const d = r.fake.get('deployments', 'api-iris')!;
    assert.equal(d.spec.replicas, want);
    assert.deepEqual(d.spec.template, before.spec.template, `scale to ${want} must not touch the template`);
    assert.equal(podsOf(r.fake).length, want);
    assert.equal(r.orch.status('iris')?.requested, want);
    const patch = r.fake.requests.at(-1)!;
    assert.deepEqual(
      { method: patch.method, path: patch.path, contentType: patch.contentType, body: patch.body },
      { method: 'PATCH', path: '/apis/apps/v1/namespaces/default/deployments/api-iris/scale', contentType: 'application/merge-patch+json', body: { spec: { replicas: want } } },
    );
  }
  assert.equal(new Set(podsOf(r.fake).map((p) => p.metadata.labels['pod-template-hash'])).size, 1, 'no new revision');
  await assert.rejects(r.orch.scale('nope', 1), (e: unknown) => e instanceof OrchestratorError && /not deployed/.test(e.message));
});

test('a new revision rolls within maxSurge/maxUnavailable and status shows up-to-date vs stale', async () => {
  await using r = await rig();
  const strategy = { updateStrategy: { maxSurge: { kind: 'absolute', value: 1 }, maxUnavailable: { kind: 'absolute', value: 0 } } } as const;
  await r.orch.apply(deployment('r1', 2, strategy));
  for (const p of podsOf(r.fake)) r.fake.markPodReady(p.metadata.name);
  await replicasWhere(r.orch, '2 ready r1', (l) => l.filter((x) => x.state === 'ready' && x.revision === 'r1').length === 2);
  const oldHash = podsOf(r.fake)[0].metadata.labels['pod-template-hash'];

  await r.orch.apply(deployment('r2', 2, { ...strategy, predictor: { config: { threshold: 0.5 } } }));
  const d = r.fake.get('deployments', 'api-iris')!;
  assert.equal(d.spec.template.metadata.labels['myelin.dev/revision'], 'r2');
  // Step by step: one surge pod at a time; an old pod goes only when a new one is ready.
  const steps = [
    { name: 'surge 1', want: { upToDate: 0, stale: 2, pending: 1 } },
    { name: 'first new ready', want: { upToDate: 1, stale: 1, pending: 1 } },
    { name: 'done', want: { upToDate: 2, stale: 0, pending: 0 } },
  ];
  for (const step of steps) {
    const s = await waitFor(`status ${step.name}`, () => {
      const st = r.orch.status('iris');
      return st && st.upToDate === step.want.upToDate && st.stale === step.want.stale && st.pending === step.want.pending ? st : undefined;
    });
    assert.equal(s.revision, 'r2');
    assert.ok(podsOf(r.fake).length <= 3, `${step.name}: at most replicas + maxSurge pods`);
    for (const p of podsOf(r.fake, 'r2')) if (p.status.phase === 'Pending') r.fake.markPodReady(p.metadata.name);
  }
  const list = await replicasWhere(r.orch, 'only r2 left', (l) => l.length === 2 && l.every((x) => x.revision === 'r2' && x.state === 'ready'));
  assert.ok(list.every((x) => x.address && 'host' in x.address && x.address.port === 8888));
  assert.ok(podsOf(r.fake).every((p) => p.metadata.labels['pod-template-hash'] !== oldHash));
});

test('replicas$ follows pod states through the watch', async () => {
  await using r = await rig({ holdTermination: true });
  await r.orch.apply(deployment('r1', 1));
  const pod = podsOf(r.fake)[0].metadata.name;
  const cases: {
    name: string;
    act: () => void;
    want: Partial<ReplicaInfo>;
    status?: { crashLooping?: boolean; computeUnavailable?: boolean; upToDate?: number; lastLogLines?: readonly string[]; message?: RegExp };
  }[] = [
    { name: 'pending', act: () => undefined, want: { state: 'pending' } },
    {
      name: 'unschedulable',
      act: () => r.fake.markPodUnschedulable(pod, '0/2 nodes are available: 2 Insufficient nvidia.com/gpu.'),
      want: { state: 'pending', pendingReason: 'compute unavailable: 0/2 nodes are available: 2 Insufficient nvidia.com/gpu.' },
      status: { computeUnavailable: true, crashLooping: false, message: /Insufficient nvidia\.com\/gpu/ },
    },
    { name: 'starting', act: () => r.fake.markPodRunning(pod, { ready: false }), want: { state: 'starting' }, status: { computeUnavailable: false, upToDate: 0 } },
    { name: 'ready', act: () => r.fake.markPodReady(pod), want: { state: 'ready' }, status: { upToDate: 1 } },
    {
      name: 'crash loop',
      act: () => {
        r.fake.appendPodLog(pod, ['loading model', 'Error: model.onnx not found']);
        r.fake.markPodCrashLoop(pod, { exitCode: 3 });
      },
      want: { state: 'crashed', exitCode: 3, signal: null },
      status: { crashLooping: true, upToDate: 0, lastLogLines: ['loading model', 'Error: model.onnx not found'], message: /CrashLoopBackOff.*exit code 3/ },
    },
    { name: 'recovers', act: () => r.fake.markPodReady(pod), want: { state: 'ready' }, status: { crashLooping: false, upToDate: 1 } },
    { name: 'terminating', act: () => r.fake.deletePod(pod), want: { state: 'terminating' } },
  ];
  for (const c of cases) {
    c.act();
    const list = await replicasWhere(r.orch, c.name, (l) => {
      const x = l.find((y) => y.id === pod);
      return !!x && Object.entries(c.want).every(([k, v]) => (x as unknown as Record<string, unknown>)[k] === v);
    });
    const x = list.find((y) => y.id === pod)!;
    assert.equal(x.api, 'iris', c.name);
    assert.equal(x.revision, 'r1', c.name);
    if (x.state === 'ready') {
      assert.deepEqual(x.address, { host: r.fake.get('pods', pod)!.status.podIP, port: 8888 }, c.name);
      assert.equal(typeof x.readyAt, 'number', c.name);
    }
    if (c.status) {
      const want = c.status;
      const s = await waitFor(`${c.name}: status`, () => {
        const st = r.orch.status('iris');
        if (!st) return undefined;
        const ok =
          (want.crashLooping === undefined || st.crashLooping === want.crashLooping) &&
          (want.computeUnavailable === undefined || st.computeUnavailable === want.computeUnavailable) &&
          (want.upToDate === undefined || st.upToDate === want.upToDate) &&
          (want.lastLogLines === undefined || JSON.stringify(st.lastLogLines) === JSON.stringify(want.lastLogLines));
        return ok ? st : undefined;
      });
      if (want.message) assert.match(s.message ?? '', want.message, c.name);
    }
  }
  // The evicted pod is replaced by the fake's controller, and the watch reports the newcomer.
  await replicasWhere(r.orch, 'a replacement pod', (l) => l.some((x) => x.id !== pod && x.state === 'pending'));
  r.fake.finishTermination(pod);
  await replicasWhere(r.orch, 'the old pod gone', (l) => l.length === 1 && l[0].id !== pod);
});

test('remove deletes the Deployment and the Service, and the replicas go away', async () => {
  await using r = await rig();
  await r.orch.apply(deployment('r1', 2));
  await replicasWhere(r.orch, '2 pods', (l) => l.length === 2);
  await r.orch.remove('iris');
  assert.deepEqual(r.fake.list('deployments'), []);
  assert.deepEqual(r.fake.list('services'), []);
  assert.equal(r.orch.status('iris'), undefined);
  await replicasWhere(r.orch, 'no pods', (l) => l.length === 0);
  await r.orch.remove('iris'); // idempotent: already gone is fine
});

test('close stops the watches and completes replicas$; removeOnClose deletes what it applied', async () => {
  const cases = [
    { name: 'default keeps workloads', removeOnClose: false, wantDeployments: ['api-iris'] },
    { name: 'removeOnClose', removeOnClose: true, wantDeployments: [] as string[] },
  ];
  for (const c of cases) {
    await using fake = await FakeKubeApi.start();
    const orch = new KubernetesOrchestrator(log, { server: fake.url, watchRetryMs: 20, removeOnClose: c.removeOnClose });
    await orch.start();
    await orch.apply(deployment('r1', 1));
    await waitFor(`${c.name}: two watches open`, () => fake.openWatches() === 2);
    const all = lastValueFrom(orch.replicas$().pipe(toArray()));
    await orch.close();
    await waitFor(`${c.name}: watches closed`, () => fake.openWatches() === 0);
    assert.ok((await all).length >= 1, `${c.name}: replicas$ completed`);
    assert.deepEqual(fake.list('deployments').map((d) => d.metadata.name), c.wantDeployments, c.name);
    const connects = orch.watchConnections();
    const pod = fake.list('pods').find((p) => !p.metadata.deletionTimestamp);
    if (pod) fake.markPodReady(pod.metadata.name);
    assert.deepEqual(orch.watchConnections(), connects, `${c.name}: no reconnection after close`);
    assert.equal(fake.openWatches(), 0, c.name);
  }
});

test('after close, start, apply and scale reject with OrchestratorError; remove still deletes', async () => {
  await using fake = await FakeKubeApi.start();
  const orch = new KubernetesOrchestrator(log, { server: fake.url, watchRetryMs: 20 });
  await orch.start();
  await orch.apply(deployment('r1', 1));
  await orch.close();
  await orch.close(); // a second close does nothing
  const isClosed = (e: unknown): boolean => e instanceof OrchestratorError && /the kubernetes orchestrator is closed/.test(e.message);
  const writesBefore = fake.requests.filter((q) => q.method !== 'GET').length;
  const cases: { name: string; call: () => Promise<void> }[] = [
    { name: 'apply', call: () => orch.apply(deployment('r2', 2)) },
    { name: 'apply of another api', call: () => orch.apply(deployment('r1', 1, { name: 'late' })) },
    { name: 'scale', call: () => orch.scale('iris', 3) },
    { name: 'start', call: () => orch.start() },
  ];
  for (const c of cases) await assert.rejects(c.call(), isClosed, c.name);
  assert.equal(fake.requests.filter((q) => q.method !== 'GET').length, writesBefore, 'nothing reached the API server');
  const d = fake.get('deployments', 'api-iris')!;
  assert.deepEqual({ replicas: d.spec.replicas, revision: d.spec.template.metadata.labels['myelin.dev/revision'] }, { replicas: 1, revision: 'r1' });
  assert.equal(orch.status('iris')?.requested, 1, 'status answers from the last state seen');
  await orch.remove('iris');
  assert.deepEqual([...fake.list('deployments'), ...fake.list('services')], [], 'remove after close deleted the objects');
});

test('removeOnClose waits for an apply under way and removes what it wrote, and only what this instance applied', async () => {
  await using fake = await FakeKubeApi.start();
  const other = new KubernetesOrchestrator(log, { server: fake.url });
  await other.start();
  await other.apply(deployment('r1', 1, { name: 'kept' }));
  await other.close();
  const orch = new KubernetesOrchestrator(log, { server: fake.url, watchRetryMs: 20, removeOnClose: true });
  await orch.start();
  const late = orch.apply(deployment('r1', 1));
  await orch.close();
  await late;
  assert.deepEqual(fake.list('deployments').map((d) => d.metadata.name), ['api-kept']);
  assert.deepEqual(fake.list('services').map((s) => s.metadata.name), ['api-kept']);
});

test('a pod that failed once is a crashed replica with its exit, counted as failed but not crash-looping', async () => {
  await using r = await rig();
  await r.orch.apply(deployment('r1', 1));
  const pod = podsOf(r.fake)[0].metadata.name;
  r.fake.markPodReady(pod);
  await replicasWhere(r.orch, 'ready', (l) => l.some((x) => x.id === pod && x.state === 'ready'));
  r.fake.markPodFailed(pod);
  const list = await replicasWhere(r.orch, 'crashed', (l) => l.some((x) => x.id === pod && x.state === 'crashed'));
  const x = list.find((y) => y.id === pod)!;
  assert.deepEqual({ exitCode: x.exitCode, signal: x.signal, crashReason: x.crashReason }, { exitCode: 1, signal: null, crashReason: 'Error (exit code 1)' });
  const s = await waitFor('status failed 1', () => (r.orch.status('iris')?.failed === 1 ? r.orch.status('iris') : undefined));
  assert.equal(s.crashLooping, false);
  assert.equal(s.message, `replica ${pod} crashed: Error (exit code 1)`);
});

test('the watch resumes after the server drops it, and lists again after 410 Expired', async () => {
  const cases = [
    { name: 'server ends the stream', drop: (f: FakeKubeApi) => f.dropWatches('end'), relist: false },
    { name: 'connection cut', drop: (f: FakeKubeApi) => f.dropWatches('destroy'), relist: false },
    {
      name: 'history compacted',
      drop: (f: FakeKubeApi) => {
        f.compactHistory();
        return f.dropWatches('end');
      },
      relist: true,
    },
  ];
  await using r = await rig();
  await r.orch.apply(deployment('r1', 3));
  for (const [i, c] of cases.entries()) {
    const before = r.orch.watchConnections().pods;
    const listsBefore = r.fake.requests.filter((q) => q.method === 'GET' && q.path.endsWith('/pods') && !q.query.includes('watch=true')).length;
    assert.ok(c.drop(r.fake) >= 2, `${c.name}: dropped the pod and deployment watches`);
    // Change a pod while the watch is down or reconnecting: the change must still arrive.
    const pod = podsOf(r.fake)[i].metadata.name;
    r.fake.markPodReady(pod);
    await replicasWhere(r.orch, `${c.name}: pod ${pod} ready`, (l) => l.find((x) => x.id === pod)?.state === 'ready');
    await waitFor(`${c.name}: reconnected`, () => r.orch.watchConnections().pods > before && r.fake.openWatches() === 2);
    const listsAfter = r.fake.requests.filter((q) => q.method === 'GET' && q.path.endsWith('/pods') && !q.query.includes('watch=true')).length;
    assert.equal(listsAfter > listsBefore, c.relist, `${c.name}: relisted`);
  }
  // Still following after all that: a scale-up shows up as new pods.
  await r.orch.scale('iris', 4);
  await replicasWhere(r.orch, '4 pods', (l) => l.length === 4);
});

test('a second instance finds what the first one deployed (daemon restart)', async () => {
  await using fake = await FakeKubeApi.start({ autoReady: true });
  const first = new KubernetesOrchestrator(log, { server: fake.url });
  await first.start();
  await first.apply(deployment('r1', 2));
  await first.close();
  const second = new KubernetesOrchestrator(log, { server: fake.url });
  await second.start();
  const s = second.status('iris');
  assert.deepEqual({ revision: s?.revision, requested: s?.requested, upToDate: s?.upToDate }, { revision: 'r1', requested: 2, upToDate: 2 });
  const list = await firstValueFrom(second.replicas$().pipe(take(1)));
  assert.equal(list.length, 2);
  await second.close();
});

test('logs$ reads the pods logs, with tail, and follows new lines and new pods', async () => {
  await using r = await rig();
  await r.orch.apply(deployment('r1', 2));
  const [a, b] = podsOf(r.fake).map((p) => p.metadata.name);
  r.fake.markPodReady(a);
  r.fake.markPodReady(b);
  await replicasWhere(r.orch, '2 ready', (l) => l.filter((x) => x.state === 'ready').length === 2);
  r.fake.appendPodLog(a, ['a1', 'a2', 'a3']);
  r.fake.appendPodLog(b, ['b1']);

  const cases = [
    { name: 'all lines', tail: undefined, want: ['a1', 'a2', 'a3', 'b1'] },
    { name: 'tail 1 per pod', tail: 1, want: ['a3', 'b1'] },
  ];
  for (const c of cases) {
    const got = await lastValueFrom(r.orch.logs$('iris', { follow: false, tail: c.tail }).pipe(toArray(), timeout(10_000)));
    assert.deepEqual([...got].sort(), c.want, c.name);
  }
  assert.deepEqual(await lastValueFrom(r.orch.logs$('nope', { follow: false }).pipe(toArray(), timeout(10_000))), []);

  const seen: string[] = [];
  const sub = r.orch.logs$('iris', { follow: true, tail: 1 }).subscribe((l) => seen.push(l));
  await waitFor('history lines', () => seen.includes('a3') && seen.includes('b1'));
  r.fake.appendPodLog(b, ['b2']);
  await waitFor('a live line', () => seen.includes('b2'));
  await r.orch.scale('iris', 3);
  const c = podsOf(r.fake).map((p) => p.metadata.name).find((n) => n !== a && n !== b)!;
  r.fake.markPodReady(c);
  await waitFor('the new pod followed', async () => {
    // The stream opens asynchronously; keep writing until a line of the new pod arrives.
    r.fake.appendPodLog(c, ['c-line']);
    return seen.includes('c-line');
  });
  sub.unsubscribe();
  assert.ok(!seen.includes('a1') && !seen.includes('a2'), 'tail 1 limits the history');
});

test('start fails with OrchestratorError when the API server cannot be reached', async () => {
  // Port 1 on loopback: nothing listens there.
  const orch = new KubernetesOrchestrator(log, { server: 'http://127.0.0.1:1' });
  await assert.rejects(orch.start(), (e: unknown) => e instanceof OrchestratorError && /listing deployments and pods/.test(e.message));
  await orch.close();
});

test('a kubeconfig that cannot be read is an OrchestratorError at construction', () => {
  assert.throws(
    () => new KubernetesOrchestrator(log, { kubeconfigPath: '/nonexistent/kubeconfig' }),
    (e: unknown) => e instanceof OrchestratorError && /cannot load the cluster configuration/.test(e.message),
  );
});

test('errors from the API server become OrchestratorErrors with its message', async () => {
  await using r = await rig();
  await assert.rejects(
    r.orch.apply(deployment('r1', 1, { name: 'x'.repeat(60) })),
    (e: unknown) => e instanceof OrchestratorError && /too long/.test(e.message),
  );
  await assert.rejects(
    r.orch.apply(deployment('r1', 1, { name: 'Bad_Name' })),
    (e: unknown) => e instanceof OrchestratorError && /HTTP 422/.test(e.message) && /RFC 1123/.test(e.message),
  );
});

test('every request fits CONTROL_PLANE_RULES (the rendered Role, and the one in docs/kubernetes.md), and every rule is used', async () => {
  const docs = await readFile(new URL('../../../../docs/kubernetes.md', import.meta.url), 'utf8');
  const yamlBlock = /```yaml\n([\s\S]*?)```/.exec(docs)?.[1];
  assert.ok(yamlBlock, 'docs/kubernetes.md has a yaml block');
  const role = parseAllDocuments(yamlBlock)
    .map((d) => d.toJS() as KubeObject)
    .find((d) => d.kind === 'Role');
  assert.ok(role, 'the yaml block has a Role');
  const triples = (rules: readonly KubeObject[]): string[] => {
    const out = new Set<string>();
    for (const rule of rules) for (const g of rule.apiGroups) for (const res of rule.resources) for (const v of rule.verbs) out.add(`${g}|${res}|${v}`);
    return [...out].sort();
  };
  const allowed = new Set(triples(CONTROL_PLANE_RULES as unknown as KubeObject[]));
  assert.deepEqual(triples(role.rules as KubeObject[]), [...allowed].sort(), 'the Role in docs/kubernetes.md is CONTROL_PLANE_RULES');
  const rendered = controlPlaneManifests({ namespace: 'ml' }).find((o) => o.kind === 'Role') as KubeObject;
  assert.deepEqual(triples(rendered.rules as KubeObject[]), [...allowed].sort(), 'render --daemon prints CONTROL_PLANE_RULES');

  await using r = await rig();
  const project = { id: 'p1', token: 't1' };
  await r.orch.apply({ ...deployment('r1', 1), project });
  await r.orch.apply({ ...deployment('r1', 2), project });
  await r.orch.scale('iris', 2);
  const pod = podsOf(r.fake)[0].metadata.name;
  r.fake.markPodReady(pod);
  r.fake.appendPodLog(pod, ['hello']);
  await replicasWhere(r.orch, 'a ready pod', (l) => l.some((x) => x.state === 'ready'));
  await lastValueFrom(r.orch.logs$('iris', { follow: false, tail: 5 }).pipe(toArray(), timeout(10_000)));
  r.fake.markPodCrashLoop(pod);
  await waitFor('crash log fetched', () => (r.orch.status('iris')?.lastLogLines.length ?? 0) > 0);
  await r.orch.apply(deployment('r2', 2));
  await r.orch.remove('iris');

  const used = new Set<string>();
  for (const q of r.fake.requests) {
    const a = requestAttributes(q);
    assert.ok(a && a.namespace === 'default', `unexpected request ${q.method} ${q.path}`);
    assert.ok(rulesAllow(CONTROL_PLANE_RULES, a.group, a.resource, a.verb), `${q.method} ${q.path}${q.query} is not allowed by CONTROL_PLANE_RULES`);
    used.add(`${a.group}|${a.resource}|${a.verb}`);
  }
  const missing = [...used].filter((u) => !allowed.has(u));
  assert.deepEqual(missing, [], 'requests not allowed by the documented Role');
  const unused = [...allowed].filter((a) => !used.has(a));
  assert.deepEqual(unused, [], 'verbs in the Role that the adapter never uses');
});
