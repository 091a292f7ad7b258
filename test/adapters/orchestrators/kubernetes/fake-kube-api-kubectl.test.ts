/**
 * Keeps the fake API server honest (SG 9.4): the real `kubectl` reads and changes what the fake
 * serves, and the outputs are compared with what a real cluster would print.
 *
 * Left out on purpose: client-side validation (`kubectl create/apply` without `--validate=false`)
 * downloads the OpenAPI document, which the fake does not serve; the default table output of
 * `kubectl get` asks for server-side `Table` rendering, which the fake does not do (it answers the
 * plain list, which kubectl accepts only for `-o json|yaml|name|jsonpath`). Client-side
 * `kubectl apply --validate=false` works (render.test.ts pipes `myelin render` into it); server-side
 * apply does not.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { FakeKubeApi, type KubeObject } from '../../../harness/fake-kube-api.js';
import { KUBECTL, Kubectl } from './kubectl.js';
import { waitFor } from './wait-for.js';

let fake: FakeKubeApi;
let kubectl: Kubectl;

before(async () => {
  assert.ok(existsSync(KUBECTL), `${KUBECTL} is required for these tests`);
  fake = await FakeKubeApi.start();
  kubectl = await Kubectl.for(fake);
});
after(async () => {
  await kubectl[Symbol.asyncDispose]();
  await fake.close();
});

function deployment(api: string, replicas: number, revision: string): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `api-${api}`, labels: { 'myelin.dev/api': api } },
    spec: {
      replicas,
      selector: { matchLabels: { 'myelin.dev/api': api } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels: { 'myelin.dev/api': api, 'myelin.dev/revision': revision } },
        spec: { containers: [{ name: 'replica', image: 'myelin/replica:test', ports: [{ containerPort: 8888 }] }] },
      },
    },
  };
}

async function call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: KubeObject }> {
  const res = await fetch(`${fake.url}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: { 'content-type': contentType } });
  return { status: res.status, body: (await res.json()) as KubeObject };
}

const DEPLOYMENTS = '/apis/apps/v1/namespaces/default/deployments';

test('kubectl get deployments -o json lists what was created, typed and with server fields', async () => {
  assert.equal((await call('POST', DEPLOYMENTS, deployment('iris', 2, 'r1'))).status, 201);
  assert.equal((await call('POST', DEPLOYMENTS, deployment('wine', 1, 'w1'))).status, 201);
  const r = await kubectl.run('get', 'deployments', '-o', 'json');
  assert.equal(r.code, 0, r.stderr);
  const list = JSON.parse(r.stdout) as KubeObject;
  const got = list.items.map((d: KubeObject) => ({
    kind: d.kind,
    apiVersion: d.apiVersion,
    name: d.metadata.name,
    replicas: d.spec.replicas,
    hasUid: typeof d.metadata.uid === 'string',
    hasRv: /^\d+$/.test(d.metadata.resourceVersion),
  }));
  const want = [
    { kind: 'Deployment', apiVersion: 'apps/v1', name: 'api-iris', replicas: 2, hasUid: true, hasRv: true },
    { kind: 'Deployment', apiVersion: 'apps/v1', name: 'api-wine', replicas: 1, hasUid: true, hasRv: true },
  ];
  assert.deepEqual(got, want);
});

test('kubectl get pods -l selects the pods the controller made for one API', async () => {
  const r = await kubectl.run('get', 'pods', '-l', 'myelin.dev/api=iris', '-o', 'json');
  assert.equal(r.code, 0, r.stderr);
  const pods = (JSON.parse(r.stdout) as KubeObject).items as KubeObject[];
  assert.equal(pods.length, 2, `want 2 iris pods, got ${pods.map((p) => p.metadata.name).join(', ')}`);
  for (const p of pods) {
    assert.equal(p.kind, 'Pod');
    assert.equal(p.metadata.labels['myelin.dev/api'], 'iris');
    assert.equal(p.metadata.labels['myelin.dev/revision'], 'r1');
    assert.match(p.metadata.name, new RegExp(`^api-iris-${p.metadata.labels['pod-template-hash']}-[a-z0-9]{5}$`));
    assert.equal(p.status.phase, 'Pending');
  }
});

test('kubectl scale patches the scale subresource; jsonpath reads the new spec.replicas', async () => {
  const before = fake.get('deployments', 'api-iris')!;
  const r = await kubectl.run('scale', 'deployment', 'api-iris', '--replicas=3');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'deployment.apps/api-iris scaled');
  const patch = fake.requests.filter((q) => q.method === 'PATCH').at(-1);
  assert.deepEqual(
    { path: patch?.path, contentType: patch?.contentType, body: patch?.body },
    { path: `${DEPLOYMENTS}/api-iris/scale`, contentType: 'application/merge-patch+json', body: { spec: { replicas: 3 } } },
  );
  const jp = await kubectl.run('get', 'deployment', 'api-iris', '-o', 'jsonpath={.spec.replicas}');
  assert.equal(jp.code, 0, jp.stderr);
  assert.equal(jp.stdout, '3');
  const after = fake.get('deployments', 'api-iris')!;
  assert.deepEqual(after.spec.template, before.spec.template, 'scaling must not touch the pod template');
  assert.equal(fake.list('pods', 'myelin.dev/api=iris').length, 3);
});

test('kubectl wait sees pods become ready through its watch', async () => {
  const waiting = kubectl.run('wait', '--for=condition=Available', 'deployment/api-wine', '--timeout=20s');
  // kubectl lists, then watches from the list's resourceVersion: change the pods only once it watches.
  await waitFor('kubectl to open its watch', () => fake.openWatches() > 0);
  for (const p of fake.list('pods', 'myelin.dev/api=wine')) fake.markPodReady(p.metadata.name);
  const r = await waiting;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'deployment.apps/api-wine condition met');
});

test('kubectl rollout status follows a rolling update to the end', async () => {
  for (const p of fake.list('pods', 'myelin.dev/api=iris')) fake.markPodReady(p.metadata.name);
  const current = fake.get('deployments', 'api-iris')!;
  const next = deployment('iris', 3, 'r2');
  next.metadata.resourceVersion = current.metadata.resourceVersion;
  assert.equal((await call('PUT', `${DEPLOYMENTS}/api-iris`, next)).status, 200);
  const rolling = kubectl.run('rollout', 'status', 'deployment/api-iris', '--timeout=20s');
  await waitFor('kubectl to open its watch', () => fake.openWatches() > 0);
  // Play the kubelet: make each new pod ready; the controller then retires an old one (maxSurge 1, maxUnavailable 0).
  await waitFor('the rollout to finish', () => {
    const pods = fake.list('pods', 'myelin.dev/api=iris');
    for (const p of pods) if (p.status.phase === 'Pending' && !p.metadata.deletionTimestamp) fake.markPodReady(p.metadata.name);
    return pods.length === 3 && pods.every((p) => p.metadata.labels['myelin.dev/revision'] === 'r2' && p.status.phase === 'Running');
  });
  const r = await rolling;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /deployment "api-iris" successfully rolled out/);
});

test('kubectl logs reads a pod log, with --tail', async () => {
  const pod = fake.list('pods', 'myelin.dev/api=iris')[0].metadata.name;
  fake.appendPodLog(pod, ['loading model', 'ready on :8888']);
  const cases = [
    { name: 'whole log', args: ['logs', pod], want: 'loading model\nready on :8888\n' },
    { name: 'tail 1', args: ['logs', pod, '--tail=1'], want: 'ready on :8888\n' },
  ];
  for (const c of cases) {
    const r = await kubectl.run(...c.args);
    assert.equal(r.code, 0, `${c.name}: ${r.stderr}`);
    assert.equal(r.stdout, c.want, c.name);
  }
});

test('errors come back as Status objects kubectl understands', async () => {
  const cases = [
    { name: 'missing deployment', args: ['get', 'deployment', 'nope'], want: 'Error from server (NotFound): deployments.apps "nope" not found' },
    {
      name: 'create twice',
      args: ['create', '--validate=false', '-f', '-'],
      want: 'Error from server (AlreadyExists): error when creating "STDIN": deployments.apps "api-iris" already exists',
    },
  ];
  for (const c of cases) {
    const r = await kubectl.runWithInput(JSON.stringify(deployment('iris', 1, 'r1')), ...c.args);
    assert.equal(r.code, 1, c.name);
    assert.equal(r.stderr.trim(), c.want, c.name);
  }
});

test('kubectl delete deployment removes it and its pods', async () => {
  const r = await kubectl.run('delete', 'deployment', 'api-iris');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'deployment.apps "api-iris" deleted');
  await waitFor('the iris pods to be gone', () => fake.list('pods', 'myelin.dev/api=iris').length === 0);
  const list = await kubectl.run('get', 'deployments', '-o', 'json');
  assert.deepEqual(
    (JSON.parse(list.stdout) as KubeObject).items.map((d: KubeObject) => d.metadata.name),
    ['api-wine'],
  );
  const pods = await kubectl.run('get', 'pods', '-l', 'myelin.dev/api=iris', '-o', 'json');
  assert.deepEqual((JSON.parse(pods.stdout) as KubeObject).items, []);
});
