/**
 * `myelin render` (serving/cli/commands/render.ts): the YAML it prints is parsed and checked field by
 * field against the config, then applied with the real `kubectl apply` to the fake API server and
 * read back; `render --daemon` prints the control plane, which applies too.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { CONTROL_PLANE_RULES } from '../../../../adapters/orchestrators/kubernetes/control-plane-manifests.js';
import { DEFAULT_GATEWAY_PORT } from '../../../../core/config/api-spec.js';
import { OrchestratorError } from '../../../../core/errors.js';
import { render } from '../../../../serving/cli/commands/render.js';
import { decodeBundle } from '../../../../serving/daemon/project-bundle.js';
import { FakeKubeApi, type KubeObject } from '../../../harness/fake-kube-api.js';
import { KUBECTL, Kubectl } from './kubectl.js';

const CONFIG = `
- name: iris-gpu
  kind: RealtimeAPI
  predictor:
    type: onnx
    path: predictor.ts
    model_path: model/iris.onnx
    env:
      OMP_NUM_THREADS: "2"
  compute:
    cpu: 500m
    gpu: 1
    mem: 1Gi
  autoscaling:
    min_replicas: 1
    init_replicas: 2
    max_replicas: 4
  update_strategy:
    max_surge: 2
    max_unavailable: 25%
- name: hello-inf
  kind: RealtimeAPI
  predictor:
    type: typescript
    path: predictor.ts
    config:
      model: s3://bucket/iris.onnx
  compute:
    cpu: 1
    inf: 1
`;

let project: string;

before(async () => {
  project = await mkdtemp(join(tmpdir(), 'myelin-render-'));
  await cp(new URL('../../../../examples/iris-onnx/', import.meta.url), project, { recursive: true });
  await writeFile(join(project, 'myelin.yaml'), CONFIG);
});
after(async () => {
  await rm(project, { recursive: true, force: true });
});

async function renderText(options: { file?: string; daemon?: boolean; nats?: string; namespace?: string; image?: string; serviceAccount?: string; imagePullSecrets?: string[] }): Promise<{ text: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let text = '';
  let stderr = '';
  out.setEncoding('utf8').on('data', (d: string) => (text += d));
  err.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  await render({ cwd: project, ...options, stdout: out, stderr: err });
  out.end();
  err.end();
  return { text, stderr };
}

function parse(text: string): KubeObject[] {
  const docs = parseAllDocuments(text);
  for (const d of docs) assert.deepEqual(d.errors, []);
  return docs.map((d) => d.toJS() as KubeObject);
}

const byKindName = (objs: readonly KubeObject[], kind: string, name: string): KubeObject => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `no ${kind} ${name} in ${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`);
  return o;
};

test('render prints, per API, the ConfigMap with the project, the Deployment and the Service, field by field from the config', async () => {
  const { text } = await renderText({ namespace: 'ml', image: 'reg.example/myelin:1', nats: 'nats://nats.ml:4222' });
  const objs = parse(text);
  assert.deepEqual(
    objs.map((o) => `${o.apiVersion} ${o.kind} ${o.metadata.namespace}/${o.metadata.name}`),
    [
      'v1 ConfigMap ml/api-iris-gpu-project',
      'apps/v1 Deployment ml/api-iris-gpu',
      'v1 Service ml/api-iris-gpu',
      'v1 ConfigMap ml/api-hello-inf-project',
      'apps/v1 Deployment ml/api-hello-inf',
      'v1 Service ml/api-hello-inf',
    ],
  );
  assert.doesNotMatch(text, /^\s*(?:- )?[\w./-]+: [&*]\w/m, 'no YAML anchors or aliases');

  const cm = byKindName(objs, 'ConfigMap', 'api-iris-gpu-project');
  const bundle = decodeBundle(Buffer.from(cm.binaryData['project.bundle'], 'base64'));
  assert.equal(bundle.configFile, 'myelin.yaml');
  assert.deepEqual(bundle.files.map((f) => f.path).sort(), ['build-model.ts', 'model/iris.onnx', 'myelin.yaml', 'predictor.ts', 'sample.json']);

  const d = byKindName(objs, 'Deployment', 'api-iris-gpu');
  assert.equal(d.spec.replicas, 2, 'init_replicas');
  assert.deepEqual(d.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 2, maxUnavailable: '25%' } });
  assert.deepEqual(d.spec.selector, { matchLabels: { 'myelin.dev/api': 'iris-gpu' } });
  const pod = d.spec.template.spec;
  assert.deepEqual(pod.volumes, [
    { name: 'project', emptyDir: {} },
    { name: 'bundle', configMap: { name: 'api-iris-gpu-project' } },
  ]);
  assert.equal(pod.initContainers.length, 1);
  const init = pod.initContainers[0];
  assert.equal(init.name, 'fetch-project');
  assert.equal(init.image, 'reg.example/myelin:1');
  assert.deepEqual(init.command, ['myelin', 'fetch-project', '--dest', '/project', '--from', '/bundle']);
  assert.deepEqual(init.volumeMounts, [
    { name: 'project', mountPath: '/project' },
    { name: 'bundle', mountPath: '/bundle', readOnly: true },
  ]);
  assert.equal(init.env, undefined, 'no daemon URL or token in ConfigMap mode');
  const c = pod.containers[0];
  assert.equal(c.name, 'replica');
  assert.equal(c.image, 'reg.example/myelin:1');
  assert.deepEqual(c.command, ['myelin', 'replica']);
  assert.equal(c.workingDir, '/project');
  assert.deepEqual(c.volumeMounts, [{ name: 'project', mountPath: '/project' }]);
  assert.deepEqual(c.resources, {
    requests: { cpu: '500m', memory: '1Gi', 'nvidia.com/gpu': '1' },
    limits: { memory: '1Gi', 'nvidia.com/gpu': '1' },
  });
  assert.deepEqual(c.readinessProbe.httpGet, { path: '/healthz/ready', port: 8888 });
  assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz/live', port: 8888 });
  const env = Object.fromEntries((c.env as KubeObject[]).map((e) => [e.name, e.value ?? e.valueFrom]));
  assert.equal(env.MYELIN_API, 'iris-gpu');
  assert.equal(env.MYELIN_REVISION, d.spec.template.metadata.labels['myelin.dev/revision']);
  assert.equal(env.MYELIN_PORT, '8888');
  assert.equal(env.MYELIN_NATS_URL, 'nats://nats.ml:4222');
  assert.equal(env.OMP_NUM_THREADS, '2');
  assert.deepEqual(env.MYELIN_REPLICA_ID, { fieldRef: { fieldPath: 'metadata.name' } });
  const spec = JSON.parse(env.MYELIN_API_SPEC);
  assert.equal(spec.name, 'iris-gpu');
  assert.equal(spec.projectDir, '/project');
  assert.equal(spec.configFile, '/project/myelin.yaml');
  assert.equal(spec.predictor.path, '/project/predictor.ts');
  assert.equal(spec.predictor.modelPath, '/project/model/iris.onnx');
  assert.ok(!env.MYELIN_API_SPEC.includes(project), 'no path of this machine left in the spec');

  const inf = byKindName(objs, 'Deployment', 'api-hello-inf');
  assert.equal(inf.spec.replicas, 1);
  assert.deepEqual(inf.spec.strategy.rollingUpdate, { maxSurge: '25%', maxUnavailable: '25%' });
  const infC = inf.spec.template.spec.containers[0];
  assert.deepEqual(infC.resources, { requests: { cpu: '1000m', 'aws.amazon.com/neuron': '1' }, limits: { 'aws.amazon.com/neuron': '1' } });
  const infSpec = JSON.parse((infC.env as KubeObject[]).find((e) => e.name === 'MYELIN_API_SPEC')!.value);
  assert.equal(infSpec.predictor.config.model, 's3://bucket/iris.onnx', 'model URLs are left as they are');

  const svc = byKindName(objs, 'Service', 'api-iris-gpu');
  assert.deepEqual(svc.spec, {
    type: 'ClusterIP',
    selector: { 'myelin.dev/api': 'iris-gpu' },
    ports: [{ name: 'http', port: 8888, targetPort: 8888, protocol: 'TCP' }],
  });
});

test('kubectl apply -f - takes the rendered objects; the fake holds them as rendered', { skip: !existsSync(KUBECTL) && `${KUBECTL} missing` }, async () => {
  await using fake = await FakeKubeApi.start();
  await using kubectl = await Kubectl.for(fake);
  const { text } = await renderText({});
  const rendered = parse(text);
  const r = await kubectl.runWithInput(text, 'apply', '-f', '-', '--validate=false');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n').sort(), [
    'configmap/api-hello-inf-project created',
    'configmap/api-iris-gpu-project created',
    'deployment.apps/api-hello-inf created',
    'deployment.apps/api-iris-gpu created',
    'service/api-hello-inf created',
    'service/api-iris-gpu created',
  ]);
  const cm = fake.get('configmaps', 'api-iris-gpu-project');
  assert.equal(cm?.binaryData['project.bundle'], byKindName(rendered, 'ConfigMap', 'api-iris-gpu-project').binaryData['project.bundle']);
  const d = fake.get('deployments', 'api-iris-gpu')!;
  const want = byKindName(rendered, 'Deployment', 'api-iris-gpu');
  assert.equal(d.spec.replicas, 2);
  assert.deepEqual(d.spec.template.spec.initContainers, want.spec.template.spec.initContainers);
  assert.deepEqual(d.spec.template.spec.containers, want.spec.template.spec.containers);
  assert.deepEqual(d.spec.template.spec.volumes, want.spec.template.spec.volumes);
  assert.equal(fake.list('pods', 'myelin.dev/api=iris-gpu').length, 2, 'the fake controller made init_replicas pods');
  assert.equal(fake.get('services', 'api-hello-inf')?.spec.ports[0].port, 8888);

  // Applying the same output again changes nothing.
  const again = await kubectl.runWithInput(text, 'apply', '-f', '-', '--validate=false');
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(again.stdout.trim().split('\n').filter((l) => !l.endsWith(' unchanged')), []);

  // Read back through kubectl too.
  const got = await kubectl.run('get', 'configmap', 'api-iris-gpu-project', '-o', 'jsonpath={.metadata.labels.myelin\\.dev/api}');
  assert.equal(got.code, 0, got.stderr);
  assert.equal(got.stdout, 'iris-gpu');
});

test('render refuses a project too large for a ConfigMap', async () => {
  const big = await mkdtemp(join(tmpdir(), 'myelin-render-big-'));
  try {
    await cp(project, big, { recursive: true });
    // Random bytes do not compress: the bundle stays over 900 KiB.
    await writeFile(join(big, 'model', 'big.bin'), randomBytes(1024 * 1024));
    await assert.rejects(
      renderText({ file: big }),
      (e: unknown) => e instanceof OrchestratorError && /more than a ConfigMap can hold/.test(e.message) && /api iris-gpu/.test(e.message),
    );
  } finally {
    await rm(big, { recursive: true, force: true });
  }
});

test('render --daemon prints the control plane: RBAC, NATS with JetStream, the daemon and its Services', async () => {
  const { text } = await renderText({ daemon: true, namespace: 'ml', image: 'reg.example/myelin:1' });
  const objs = parse(text);
  assert.deepEqual(
    objs.map((o) => `${o.kind}/${o.metadata.name}`),
    ['ServiceAccount/myelin', 'Role/myelin', 'RoleBinding/myelin', 'Deployment/myelin-nats', 'Service/myelin-nats', 'Deployment/myelin', 'Service/myelin', 'Service/myelin-gateway'],
  );
  for (const o of objs) assert.equal(o.metadata.namespace, 'ml', `${o.kind}/${o.metadata.name} namespace`);
  assert.deepEqual(byKindName(objs, 'Role', 'myelin').rules, CONTROL_PLANE_RULES);
  const rb = byKindName(objs, 'RoleBinding', 'myelin');
  assert.deepEqual(rb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'myelin' });
  assert.deepEqual(rb.subjects, [{ kind: 'ServiceAccount', name: 'myelin', namespace: 'ml' }]);

  const daemon = byKindName(objs, 'Deployment', 'myelin');
  assert.equal(daemon.spec.replicas, 1);
  assert.equal(daemon.spec.strategy.type, 'Recreate');
  const pod = daemon.spec.template.spec;
  assert.equal(pod.serviceAccountName, 'myelin');
  const c = pod.containers[0];
  assert.equal(c.image, 'reg.example/myelin:1');
  const cmd = (c.command as string[]).join(' ');
  for (const part of ['myelin up', '--target kubernetes', '--in-cluster', '--host 0.0.0.0', '--gateway-host 0.0.0.0', '--nats nats://myelin-nats:4222', '--namespace ml']) {
    assert.ok(cmd.includes(part), `daemon command has ${part}: ${cmd}`);
  }
  assert.deepEqual(
    (c.ports as KubeObject[]).map((p) => [p.name, p.containerPort]),
    [['control', 8889], ['gateway', DEFAULT_GATEWAY_PORT]],
  );
  const selector = daemon.spec.selector.matchLabels;
  const control = byKindName(objs, 'Service', 'myelin');
  assert.deepEqual(control.spec.selector, selector);
  assert.deepEqual(control.spec.ports, [{ name: 'control', port: 8889, targetPort: 8889, protocol: 'TCP' }]);
  const gateway = byKindName(objs, 'Service', 'myelin-gateway');
  assert.deepEqual(gateway.spec.selector, selector);
  assert.deepEqual(gateway.spec.ports, [{ name: 'http', port: 8888, targetPort: DEFAULT_GATEWAY_PORT, protocol: 'TCP' }]);

  const nats = byKindName(objs, 'Deployment', 'myelin-nats').spec.template.spec.containers[0];
  assert.equal(nats.image, 'nats:2');
  assert.ok((nats.args as string[]).includes('-js'), 'JetStream on');
  const natsSvc = byKindName(objs, 'Service', 'myelin-nats');
  assert.equal(natsSvc.spec.ports[0].port, 4222);
  assert.deepEqual(natsSvc.spec.selector, byKindName(objs, 'Deployment', 'myelin-nats').spec.selector.matchLabels);
});

test('render --daemon --nats uses that NATS and leaves the bundled one out', async () => {
  const objs = parse((await renderText({ daemon: true, nats: 'nats://shared-nats.infra:4222' })).text);
  assert.ok(!objs.some((o) => o.metadata.name === 'myelin-nats'));
  const cmd = byKindName(objs, 'Deployment', 'myelin').spec.template.spec.containers[0].command as string[];
  assert.equal(cmd[cmd.indexOf('--nats') + 1], 'nats://shared-nats.infra:4222');
  assert.equal(cmd[cmd.indexOf('--namespace') + 1], 'default');
});

test('pod credentials: --service-account and --image-pull-secret on the API pods; with --daemon on the daemon pod and passed on to its API pods', async () => {
  const apis = parse((await renderText({ serviceAccount: 'models-reader', imagePullSecrets: ['regcred', 'other'] })).text);
  const pod = apis.find((o) => o.kind === 'Deployment')!.spec.template.spec;
  assert.equal(pod.serviceAccountName, 'models-reader');
  assert.deepEqual(pod.imagePullSecrets, [{ name: 'regcred' }, { name: 'other' }]);
  const plain = parse((await renderText({})).text).find((o) => o.kind === 'Deployment')!.spec.template.spec;
  assert.equal(plain.serviceAccountName, undefined);
  assert.equal(plain.imagePullSecrets, undefined);

  const cp = parse((await renderText({ daemon: true, serviceAccount: 'models-reader', imagePullSecrets: ['regcred'] })).text);
  const daemonPod = byKindName(cp, 'Deployment', 'myelin').spec.template.spec;
  assert.equal(daemonPod.serviceAccountName, 'myelin', 'the daemon keeps its own RBAC account');
  assert.deepEqual(daemonPod.imagePullSecrets, [{ name: 'regcred' }]);
  const cmd = daemonPod.containers[0].command as string[];
  assert.equal(cmd[cmd.indexOf('--image-pull-secret') + 1], 'regcred');
  assert.equal(cmd[cmd.indexOf('--pod-service-account') + 1], 'models-reader');
  // The daemon's command is one the CLI accepts, and it hands both to the kubernetes target.
  const { buildCli } = await import('../../../../serving/cli/cli.js');
  const up = buildCli().commands.find((c) => c.name() === 'up')!;
  for (const flag of ['--image-pull-secret', '--pod-service-account']) assert.ok(up.options.some((o) => o.long === flag), `myelin up has ${flag}`);
});

test('the kubernetes target puts the pod credentials on the Deployments it applies', async () => {
  await using fake = await FakeKubeApi.start();
  const { KubernetesOrchestrator } = await import('../../../../adapters/orchestrators/kubernetes/kubernetes-orchestrator.js');
  const { pino } = await import('pino');
  const { apiSpecFixture } = await import('../../../harness/api-spec-fixture.js');
  const orch = new KubernetesOrchestrator(pino({ level: 'silent' }), { server: fake.url, watchRetryMs: 20, serviceAccountName: 'models-reader', imagePullSecrets: ['regcred'] });
  try {
    await orch.start();
    await orch.apply({ spec: apiSpecFixture({ name: 'iris' }), revision: 'r1', replicas: 1 });
    const pod = fake.get('deployments', 'api-iris')!.spec.template.spec;
    assert.equal(pod.serviceAccountName, 'models-reader');
    assert.deepEqual(pod.imagePullSecrets, [{ name: 'regcred' }]);
  } finally {
    await orch.close();
  }
});

test('kubectl apply -f - takes the control plane (ServiceAccount, Role, RoleBinding are served)', { skip: !existsSync(KUBECTL) && `${KUBECTL} missing` }, async () => {
  await using fake = await FakeKubeApi.start();
  await using kubectl = await Kubectl.for(fake);
  const { text } = await renderText({ daemon: true });
  const r = await kubectl.runWithInput(text, 'apply', '-f', '-', '--validate=false');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), [
    'serviceaccount/myelin created',
    'role.rbac.authorization.k8s.io/myelin created',
    'rolebinding.rbac.authorization.k8s.io/myelin created',
    'deployment.apps/myelin-nats created',
    'service/myelin-nats created',
    'deployment.apps/myelin created',
    'service/myelin created',
    'service/myelin-gateway created',
  ]);
  assert.deepEqual(fake.get('roles', 'myelin')?.rules, CONTROL_PLANE_RULES);
  assert.equal(fake.get('serviceaccounts', 'myelin')?.kind, 'ServiceAccount');
  assert.equal(fake.get('rolebindings', 'myelin')?.roleRef.name, 'myelin');
  assert.equal(fake.get('deployments', 'myelin')?.spec.template.spec.serviceAccountName, 'myelin');
});
