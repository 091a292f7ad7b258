import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cpuQuantity,
  deploymentManifest,
  intOrPercent,
  memoryQuantity,
  serviceManifest,
  specId,
  type ManifestOptions,
} from '../../../../adapters/orchestrators/kubernetes/kubernetes-manifests.js';
import { apiSpecFixture } from '../../../harness/api-spec-fixture.js';

const options: ManifestOptions = { namespace: 'ml', image: 'myelin/replica:test', command: ['myelin', 'replica'], terminationGracePeriodSeconds: 60, replicaEnv: { MYELIN_NATS_URL: 'nats://nats:4222' } };

test('quantities: cpu millicores, memory in the largest exact binary unit, int-or-percent', () => {
  const cases = [
    { got: cpuQuantity(200), want: '200m' },
    { got: cpuQuantity(1500), want: '1500m' },
    { got: memoryQuantity(1024 ** 3), want: '1Gi' },
    { got: memoryQuantity(512 * 1024 ** 2), want: '512Mi' },
    { got: memoryQuantity(1536 * 1024 ** 2), want: '1536Mi' },
    { got: memoryQuantity(4096), want: '4Ki' },
    { got: memoryQuantity(1_000_000), want: '1000000' },
    { got: intOrPercent({ kind: 'absolute', value: 1 }), want: 1 },
    { got: intOrPercent({ kind: 'percent', value: 25 }), want: '25%' },
  ];
  for (const c of cases) assert.equal(c.got, c.want);
});

test('resources follow compute: requests always, limits for memory and extended resources', () => {
  const cases = [
    { name: 'cpu only', compute: { cpuMillis: 200, memBytes: null, gpu: 0, inf: 0 }, want: { requests: { cpu: '200m' } } },
    {
      name: 'cpu + mem',
      compute: { cpuMillis: 1000, memBytes: 2 * 1024 ** 3, gpu: 0, inf: 0 },
      want: { requests: { cpu: '1000m', memory: '2Gi' }, limits: { memory: '2Gi' } },
    },
    {
      name: 'gpu',
      compute: { cpuMillis: 500, memBytes: null, gpu: 1, inf: 0 },
      want: { requests: { cpu: '500m', 'nvidia.com/gpu': '1' }, limits: { 'nvidia.com/gpu': '1' } },
    },
    {
      name: 'inferentia',
      compute: { cpuMillis: 500, memBytes: null, gpu: 0, inf: 2 },
      want: { requests: { cpu: '500m', 'aws.amazon.com/neuron': '2' }, limits: { 'aws.amazon.com/neuron': '2' } },
    },
  ];
  for (const c of cases) {
    const d = deploymentManifest({ spec: apiSpecFixture({ name: 'iris', compute: c.compute }), revision: 'r1', replicas: 1 }, options);
    assert.deepEqual(d.spec!.template.spec!.containers[0].resources, c.want, c.name);
  }
});

test('the deployment carries names, labels, revision, strategy, probes, env and grace period', () => {
  const spec = apiSpecFixture({
    name: 'iris',
    predictor: { env: { OMP_NUM_THREADS: '1', MYELIN_API: 'ignored' } },
    updateStrategy: { maxSurge: { kind: 'absolute', value: 0 }, maxUnavailable: { kind: 'percent', value: 50 } },
  });
  const d = deploymentManifest({ spec, revision: 'abc123', replicas: 3 }, options);
  const c = d.spec!.template.spec!.containers[0];
  const got = {
    name: d.metadata!.name,
    namespace: d.metadata!.namespace,
    labels: d.metadata!.labels,
    annotations: d.metadata!.annotations,
    replicas: d.spec!.replicas,
    selector: d.spec!.selector,
    strategy: d.spec!.strategy,
    podLabels: d.spec!.template.metadata!.labels,
    grace: d.spec!.template.spec!.terminationGracePeriodSeconds,
    image: c.image,
    command: c.command,
    ports: c.ports,
    readiness: c.readinessProbe!.httpGet,
    liveness: c.livenessProbe!.httpGet,
    envNames: c.env!.map((e) => e.name),
  };
  assert.deepEqual(got, {
    name: 'api-iris',
    namespace: 'ml',
    labels: { 'myelin.dev/api': 'iris', 'app.kubernetes.io/managed-by': 'myelin' },
    annotations: { 'myelin.dev/spec-id': specId(spec, 'abc123'), 'myelin.dev/revision': 'abc123' },
    replicas: 3,
    selector: { matchLabels: { 'myelin.dev/api': 'iris' } },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: '50%' } },
    podLabels: { 'myelin.dev/api': 'iris', 'app.kubernetes.io/managed-by': 'myelin', 'myelin.dev/revision': 'abc123' },
    grace: 60,
    image: 'myelin/replica:test',
    command: ['myelin', 'replica'],
    ports: [{ name: 'http', containerPort: 8888, protocol: 'TCP' }],
    readiness: { path: '/healthz/ready', port: 8888 },
    liveness: { path: '/healthz/live', port: 8888 },
    envNames: ['MYELIN_API_SPEC', 'MYELIN_API', 'MYELIN_REVISION', 'MYELIN_PORT', 'MYELIN_HOST', 'MYELIN_NATS_URL', 'MYELIN_REPLICA_ID', 'OMP_NUM_THREADS'],
  });
  assert.deepEqual(JSON.parse(c.env![0].value!), JSON.parse(JSON.stringify(spec)), 'MYELIN_API_SPEC is the spec as JSON');
  assert.deepEqual(c.env!.find((e) => e.name === 'MYELIN_REPLICA_ID')!.valueFrom, { fieldRef: { fieldPath: 'metadata.name' } });
});

test('the template depends on the revision and the spec, not on replicas', () => {
  const spec = apiSpecFixture({ name: 'iris' });
  const a = deploymentManifest({ spec, revision: 'r1', replicas: 1 }, options);
  const b = deploymentManifest({ spec, revision: 'r1', replicas: 7 }, options);
  const c = deploymentManifest({ spec, revision: 'r2', replicas: 1 }, options);
  assert.deepEqual(a.spec!.template, b.spec!.template);
  assert.notDeepEqual(a.spec!.template, c.spec!.template);
});

test('the service maps port 8888 to the pods of the API', () => {
  assert.deepEqual(serviceManifest('iris', options), {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'api-iris', namespace: 'ml', labels: { 'myelin.dev/api': 'iris', 'app.kubernetes.io/managed-by': 'myelin' } },
    spec: { type: 'ClusterIP', selector: { 'myelin.dev/api': 'iris' }, ports: [{ name: 'http', port: 8888, targetPort: 8888, protocol: 'TCP' }] },
  });
});
