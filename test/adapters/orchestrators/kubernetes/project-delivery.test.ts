/**
 * How a pod gets its project (ProjectDelivery in kubernetes-manifests.ts): the `fetch-project` init
 * container, the volumes, the rebased spec, the Secret the kubernetes target applies, and the
 * in-cluster client configuration (`inCluster`).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import {
  deploymentManifest,
  MAX_CONFIG_MAP_BUNDLE_BYTES,
  projectConfigMapManifest,
  projectSecretManifest,
  type ManifestOptions,
} from '../../../../adapters/orchestrators/kubernetes/kubernetes-manifests.js';
import { KubernetesOrchestrator, loadKubeConfig } from '../../../../adapters/orchestrators/kubernetes/kubernetes-orchestrator.js';
import { OrchestratorError } from '../../../../core/errors.js';
import type { ApiDeployment } from '../../../../core/ports/orchestrator-target.js';
import { apiSpecFixture } from '../../../harness/api-spec-fixture.js';
import { FakeKubeApi, type KubeObject } from '../../../harness/fake-kube-api.js';

const log = pino({ level: 'silent' });
const options: ManifestOptions = { namespace: 'ml', image: 'myelin/replica:test', command: ['myelin', 'replica'], terminationGracePeriodSeconds: 60 };

function irisDeployment(project?: { id: string; token: string }): ApiDeployment {
  const spec = apiSpecFixture({
    name: 'iris',
    projectDir: '/home/me/iris',
    configFile: '/home/me/iris/myelin.yaml',
    predictor: { type: 'onnx', path: '/home/me/iris/predictor.ts', modelPath: 's3://bucket/iris.onnx', pythonPath: '/home/me/iris' },
  });
  return { spec, revision: 'r1', replicas: 1, ...(project ? { project } : {}) };
}

const envOf = (c: KubeObject): Record<string, unknown> => Object.fromEntries((c.env as KubeObject[]).map((e) => [e.name, e.value ?? e.valueFrom]));

test('without a delivery the pod is as before: no init container, no volumes, the spec as it is', () => {
  const d = deploymentManifest(irisDeployment(), options);
  const pod = d.spec!.template.spec!;
  assert.equal(pod.initContainers, undefined);
  assert.equal(pod.volumes, undefined);
  assert.equal(pod.containers[0].workingDir, undefined);
  assert.equal(JSON.parse(String(envOf(pod.containers[0]).MYELIN_API_SPEC)).projectDir, '/home/me/iris');
});

test('daemon delivery: fetch-project downloads into /project with the token from the Secret; the replica runs there', () => {
  const d = deploymentManifest(irisDeployment({ id: 'abc', token: 'tok' }), options, { kind: 'daemon', url: 'http://myelin.ml.svc:8889/v1/projects/abc?api=iris' });
  const pod = d.spec!.template.spec!;
  assert.deepEqual(pod.volumes, [{ name: 'project', emptyDir: {} }]);
  assert.deepEqual(pod.initContainers, [
    {
      name: 'fetch-project',
      image: 'myelin/replica:test',
      command: ['myelin', 'fetch-project', '--dest', '/project'],
      env: [
        { name: 'MYELIN_PROJECT_URL', value: 'http://myelin.ml.svc:8889/v1/projects/abc?api=iris' },
        { name: 'MYELIN_PROJECT_TOKEN', valueFrom: { secretKeyRef: { name: 'api-iris-project', key: 'token' } } },
      ],
      volumeMounts: [{ name: 'project', mountPath: '/project' }],
    },
  ]);
  const c = pod.containers[0];
  assert.equal(c.workingDir, '/project');
  assert.deepEqual(c.volumeMounts, [{ name: 'project', mountPath: '/project' }]);
  const spec = JSON.parse(String(envOf(c).MYELIN_API_SPEC));
  assert.equal(spec.projectDir, '/project');
  assert.equal(spec.configFile, '/project/myelin.yaml');
  assert.equal(spec.predictor.path, '/project/predictor.ts');
  assert.equal(spec.predictor.pythonPath, '/project');
  assert.equal(spec.predictor.modelPath, 's3://bucket/iris.onnx', 'model URLs are left to the replica');
});

test('requirements.txt of a Python API: the init container installs it into /python-env, the replica runs that interpreter', () => {
  const base = irisDeployment({ id: 'abc', token: 'tok' });
  const python: ApiDeployment = { ...base, spec: { ...base.spec, predictor: { ...base.spec.predictor, type: 'python', path: '/home/me/iris/predictor.py' } } };
  const d = deploymentManifest(python, options, { kind: 'daemon', url: 'http://myelin.ml.svc:8889/v1/projects/abc?api=iris', pythonRequirements: true });
  const pod = d.spec!.template.spec!;
  assert.deepEqual(pod.volumes, [{ name: 'project', emptyDir: {} }, { name: 'python-env', emptyDir: {} }]);
  const mounts = [{ name: 'project', mountPath: '/project' }, { name: 'python-env', mountPath: '/python-env' }];
  assert.deepEqual(pod.initContainers![0].command, ['myelin', 'fetch-project', '--dest', '/project', '--python-env', '/python-env']);
  assert.deepEqual(pod.initContainers![0].volumeMounts, mounts);
  assert.deepEqual(pod.containers[0].volumeMounts, mounts);
  const spec = JSON.parse(String(envOf(pod.containers[0]).MYELIN_API_SPEC));
  assert.equal(spec.predictor.env.MYELIN_PYTHON, '/python-env/current/bin/python');
  // From a ConfigMap alike; an API that runs no Python, or a project without the file, installs nothing.
  const cm = deploymentManifest(python, options, { kind: 'config-map', pythonRequirements: true }).spec!.template.spec!;
  assert.deepEqual(cm.initContainers![0].command, ['myelin', 'fetch-project', '--dest', '/project', '--from', '/bundle', '--python-env', '/python-env']);
  for (const pod2 of [
    deploymentManifest(base, options, { kind: 'daemon', url: 'http://x', pythonRequirements: true }).spec!.template.spec!,
    deploymentManifest(python, options, { kind: 'daemon', url: 'http://x' }).spec!.template.spec!,
  ]) {
    assert.deepEqual(pod2.volumes, [{ name: 'project', emptyDir: {} }]);
    assert.equal(JSON.parse(String(envOf(pod2.containers[0]).MYELIN_API_SPEC)).predictor.env.MYELIN_PYTHON, undefined);
  }
});

test('the init command is the replica command minus its last word', () => {
  const custom = { ...options, command: ['/usr/bin/node', '/app/cli.js', 'replica'], imagePullPolicy: 'Always' };
  const d = deploymentManifest(irisDeployment(), custom, { kind: 'config-map' });
  const init = d.spec!.template.spec!.initContainers![0];
  assert.deepEqual(init.command, ['/usr/bin/node', '/app/cli.js', 'fetch-project', '--dest', '/project', '--from', '/bundle']);
  assert.equal(init.imagePullPolicy, 'Always');
});

test('Secret and ConfigMap manifests; a bundle over the ConfigMap limit is refused', () => {
  assert.deepEqual(projectSecretManifest('iris', 'tok', options), {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'api-iris-project', namespace: 'ml', labels: { 'myelin.dev/api': 'iris', 'app.kubernetes.io/managed-by': 'myelin' } },
    type: 'Opaque',
    data: { token: Buffer.from('tok').toString('base64') },
  });
  const cm = projectConfigMapManifest('iris', Buffer.from('bundle'), options);
  assert.deepEqual(cm.binaryData, { 'project.bundle': Buffer.from('bundle').toString('base64') });
  assert.equal(cm.metadata?.name, 'api-iris-project');
  assert.doesNotThrow(() => projectConfigMapManifest('iris', Buffer.alloc(MAX_CONFIG_MAP_BUNDLE_BYTES), options));
  assert.throws(
    () => projectConfigMapManifest('iris', Buffer.alloc(MAX_CONFIG_MAP_BUNDLE_BYTES + 1), options),
    (e: unknown) => e instanceof OrchestratorError && /ConfigMap/.test(e.message),
  );
});

test('the kubernetes target applies the Secret before the Deployment, updates it, and deletes it with the API', async () => {
  await using fake = await FakeKubeApi.start();
  const orch = new KubernetesOrchestrator(log, { server: fake.url, image: 'myelin/replica:test', watchRetryMs: 20 });
  try {
    await orch.start();
    await orch.apply(irisDeployment({ id: 'p1', token: 'first' }));
    const secret = fake.get('secrets', 'api-iris-project');
    assert.ok(secret, 'the Secret exists');
    assert.equal(Buffer.from(secret.data.token, 'base64').toString(), 'first');
    assert.equal(secret.metadata.labels['app.kubernetes.io/managed-by'], 'myelin');
    const writes = fake.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`);
    assert.ok(
      writes.indexOf('POST /api/v1/namespaces/default/secrets') < writes.indexOf('POST /apis/apps/v1/namespaces/default/deployments'),
      `the Secret first: ${writes.join(', ')}`,
    );
    const d = fake.get('deployments', 'api-iris')!;
    const init = d.spec.template.spec.initContainers[0];
    assert.equal(init.name, 'fetch-project');
    assert.deepEqual(init.command, ['myelin', 'fetch-project', '--dest', '/project']);
    assert.equal(envOf(init).MYELIN_PROJECT_URL, 'http://myelin.default.svc:8889/v1/projects/p1?api=iris');
    assert.equal(d.spec.template.spec.containers[0].workingDir, '/project');

    await orch.apply({ ...irisDeployment({ id: 'p2', token: 'second' }), revision: 'r2' });
    assert.equal(Buffer.from(fake.get('secrets', 'api-iris-project')!.data.token, 'base64').toString(), 'second');
    assert.equal(envOf(fake.get('deployments', 'api-iris')!.spec.template.spec.initContainers[0]).MYELIN_PROJECT_URL, 'http://myelin.default.svc:8889/v1/projects/p2?api=iris');

    await orch.remove('iris');
    assert.equal(fake.get('secrets', 'api-iris-project'), undefined);
    assert.equal(fake.get('deployments', 'api-iris'), undefined);
  } finally {
    await orch.close();
  }
});

test('the kubernetes target installs requirements.txt in the pods when the stored project of a Python API has one', async () => {
  await using fake = await FakeKubeApi.start();
  const projectDir = await mkdtemp(join(tmpdir(), 'myelin-k8s-req-'));
  const orch = new KubernetesOrchestrator(log, { server: fake.url, image: 'myelin/replica:test', watchRetryMs: 20 });
  try {
    await writeFile(join(projectDir, 'requirements.txt'), 'numpy\n');
    await orch.start();
    const base = irisDeployment({ id: 'p1', token: 't' });
    await orch.apply({ ...base, spec: { ...base.spec, projectDir, predictor: { ...base.spec.predictor, type: 'python', path: join(projectDir, 'predictor.py') } } });
    const pod = fake.get('deployments', 'api-iris')!.spec.template.spec;
    assert.deepEqual(pod.initContainers[0].command, ['myelin', 'fetch-project', '--dest', '/project', '--python-env', '/python-env']);
    assert.equal(JSON.parse(String(envOf(pod.containers[0]).MYELIN_API_SPEC)).predictor.env.MYELIN_PYTHON, '/python-env/current/bin/python');
  } finally {
    await orch.close();
    await rm(projectDir, { recursive: true, force: true });
  }
});

test('daemonUrl sets where pods download from; no project means no Secret', async () => {
  await using fake = await FakeKubeApi.start();
  const orch = new KubernetesOrchestrator(log, { server: fake.url, daemonUrl: 'http://10.0.0.5:8889/', watchRetryMs: 20 });
  try {
    await orch.start();
    await orch.apply(irisDeployment({ id: 'p1', token: 't' }));
    const init = fake.get('deployments', 'api-iris')!.spec.template.spec.initContainers[0];
    assert.equal(envOf(init).MYELIN_PROJECT_URL, 'http://10.0.0.5:8889/v1/projects/p1?api=iris');
    await orch.apply({ ...irisDeployment(), spec: { ...irisDeployment().spec, name: 'plain' } });
    assert.equal(fake.get('secrets', 'api-plain-project'), undefined);
    assert.equal(fake.get('deployments', 'api-plain')!.spec.template.spec.initContainers, undefined);
  } finally {
    await orch.close();
  }
});

test('inCluster loads the service account: server from KUBERNETES_SERVICE_*, token file, namespace file', async () => {
  const prefix = await mkdtemp(join(tmpdir(), 'myelin-sa-'));
  const saDir = join(prefix, 'var/run/secrets/kubernetes.io/serviceaccount');
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  try {
    await mkdir(saDir, { recursive: true });
    await writeFile(join(saDir, 'namespace'), 'ml');
    await writeFile(join(saDir, 'token'), 'sa-token');
    delete process.env.KUBERNETES_SERVICE_HOST;
    assert.throws(() => loadKubeConfig({ inCluster: true }, prefix), /KUBERNETES_SERVICE_HOST/);
    process.env.KUBERNETES_SERVICE_HOST = '10.96.0.1';
    process.env.KUBERNETES_SERVICE_PORT = '443';
    const kc = loadKubeConfig({ inCluster: true }, prefix);
    assert.equal(kc.getCurrentCluster()?.server, 'https://10.96.0.1:443');
    assert.equal(kc.getContextObject(kc.getCurrentContext())?.namespace, 'ml');
    assert.equal(kc.getCurrentUser()?.authProvider?.config?.tokenFile, join(saDir, 'token'));
    // An explicit server still wins.
    assert.equal(loadKubeConfig({ inCluster: true, server: 'http://127.0.0.1:1' }).getCurrentCluster()?.server, 'http://127.0.0.1:1');
  } finally {
    if (saved.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
    else process.env.KUBERNETES_SERVICE_HOST = saved.host;
    if (saved.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT;
    else process.env.KUBERNETES_SERVICE_PORT = saved.port;
    await rm(prefix, { recursive: true, force: true });
  }
});
