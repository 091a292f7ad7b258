import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ApiSpec } from '../../../core/config/api-spec.js';
import { loadIn, PROJECT_FILES } from './config-test-helpers.js';

const MiB = 2 ** 20;

/** Every default of seed 001 (RealtimeAPI) and of myelin's additions, for an API named `iris` in `dir`. */
function defaults(dir: string, over: { predictor?: Partial<ApiSpec['predictor']>; autoscaling?: Partial<ApiSpec['autoscaling']> } = {}): ApiSpec {
  return {
    name: 'iris',
    kind: 'RealtimeAPI',
    dialect: 'realtime',
    predictor: {
      type: 'python',
      typeAsWritten: 'python',
      path: join(dir, 'predictor.py'),
      processesPerReplica: 1,
      threadsPerProcess: 1,
      config: {},
      pythonPath: dir,
      env: {},
      timeoutMs: 60_000,
      ...over.predictor,
    },
    networking: { endpoint: '/iris', localPort: 8888, apiGateway: 'public', maxBodyBytes: 16 * MiB },
    compute: { cpuMillis: 200, memBytes: null, gpu: 0, inf: 0 },
    autoscaling: {
      policy: 'cortex',
      minReplicas: 1,
      maxReplicas: 100,
      initReplicas: 1,
      targetReplicaConcurrency: 1,
      maxReplicaConcurrency: 1024,
      windowMs: 60_000,
      downscaleStabilizationPeriodMs: 300_000,
      upscaleStabilizationPeriodMs: 60_000,
      maxDownscaleFactor: 0.75,
      maxUpscaleFactor: 1.5,
      downscaleTolerance: 0.05,
      upscaleTolerance: 0.05,
      tickMs: 10_000,
      panicWindowMs: 10_000,
      panicThreshold: 2,
      ...over.autoscaling,
    },
    updateStrategy: { maxSurge: { kind: 'percent', value: 25 }, maxUnavailable: { kind: 'percent', value: 25 } },
    configFile: join(dir, 'cortex.yaml'),
    projectDir: dir,
  };
}

test('a minimal RealtimeAPI gets every default of seed 001 and of myelin', () => {
  const got = loadIn('- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n', PROJECT_FILES);
  assert.ok(got.ok, got.lines.join('\n'));
  assert.deepEqual(got.result.specs, [defaults(got.dir)]);
  assert.deepEqual(got.lines, []);
});

test('empty sections (null) mean "all defaults"', () => {
  const yaml = `- name: iris
  kind: RealtimeAPI
  predictor:
    type: python
    path: predictor.py
    config:
    env:
    models:
  networking:
  compute:
  monitoring:
  autoscaling:
  update_strategy:
`;
  const got = loadIn(yaml, PROJECT_FILES);
  assert.ok(got.ok, got.lines.join('\n'));
  assert.deepEqual(got.result.specs, [defaults(got.dir)]);
});

test('every RealtimeAPI field of seed 001 (python) is read and resolved with units', () => {
  const yaml = `- name: text-generator
  kind: RealtimeAPI
  predictor:
    type: python
    path: predictor.py
    models:
      paths:
        - name: gpt-2
          model_path: s3://my-bucket/gpt-2/
        - name: local-model
          model_path: models/iris
      cache_size: 1
      disk_cache_size: 2
    processes_per_replica: 1
    threads_per_process: 8
    config:
      device: cuda
      nested: { list: [1, 2, 3], flag: true }
    python_path: lib
    image: quay.io/cortexlabs/python-predictor-cpu:0.23.0
    env:
      LOG_LEVEL: debug
      WORKERS: 4
      VERBOSE: true
    timeout: 2m
    server_side_batching:
      max_batch_size: 8
      batch_interval: 100ms
  networking:
    endpoint: generate/text/
    local_port: 8890
    api_gateway: none
    max_body_size: 1Mi
  compute:
    cpu: 1500m
    gpu: 1
    mem: 2Gi
  monitoring:
    model_type: regression
    key: score
  autoscaling:
    min_replicas: 2
    max_replicas: 20
    init_replicas: 3
    target_replica_concurrency: 4.5
    max_replica_concurrency: 64
    window: 30s
    downscale_stabilization_period: 10m
    upscale_stabilization_period: 30s
    max_downscale_factor: 0.5
    max_upscale_factor: 3
    downscale_tolerance: 0.1
    upscale_tolerance: 0.2
  update_strategy:
    max_surge: 1
    max_unavailable: 10%
`;
  const got = loadIn(yaml, PROJECT_FILES);
  assert.ok(got.ok, got.lines.join('\n'));
  const d = got.dir;
  const want: ApiSpec = {
    name: 'text-generator',
    kind: 'RealtimeAPI',
    dialect: 'realtime',
    predictor: {
      type: 'python',
      typeAsWritten: 'python',
      path: join(d, 'predictor.py'),
      models: {
        paths: [
          { name: 'gpt-2', path: 's3://my-bucket/gpt-2/' },
          { name: 'local-model', path: join(d, 'models/iris') },
        ],
        cacheSize: 1,
        diskCacheSize: 2,
      },
      serverSideBatching: { maxBatchSize: 8, batchIntervalMs: 100 },
      processesPerReplica: 1,
      threadsPerProcess: 8,
      config: { device: 'cuda', nested: { list: [1, 2, 3], flag: true } },
      pythonPath: join(d, 'lib'),
      image: 'quay.io/cortexlabs/python-predictor-cpu:0.23.0',
      env: { LOG_LEVEL: 'debug', WORKERS: '4', VERBOSE: 'true' },
      timeoutMs: 120_000,
    },
    networking: { endpoint: '/generate/text', localPort: 8890, apiGateway: 'none', maxBodyBytes: MiB },
    compute: { cpuMillis: 1500, memBytes: 2 * 1024 * MiB, gpu: 1, inf: 0 },
    monitoring: { modelType: 'regression', key: 'score' },
    autoscaling: {
      policy: 'cortex',
      minReplicas: 2,
      maxReplicas: 20,
      initReplicas: 3,
      targetReplicaConcurrency: 4.5,
      maxReplicaConcurrency: 64,
      windowMs: 30_000,
      downscaleStabilizationPeriodMs: 600_000,
      upscaleStabilizationPeriodMs: 30_000,
      maxDownscaleFactor: 0.5,
      maxUpscaleFactor: 3,
      downscaleTolerance: 0.1,
      upscaleTolerance: 0.2,
      tickMs: 10_000,
      panicWindowMs: 10_000,
      panicThreshold: 2,
    },
    updateStrategy: { maxSurge: { kind: 'absolute', value: 1 }, maxUnavailable: { kind: 'percent', value: 10 } },
    configFile: join(d, 'cortex.yaml'),
    projectDir: d,
  };
  assert.deepEqual(got.result.specs, [want]);
  assert.deepEqual(got.lines, [
    '20:5: text-generator: predictor.image: warning: has no effect: myelin runs every predictor in its own replica runtime, not in a Cortex image',
    '32:5: text-generator: networking.api_gateway: warning: has no effect: myelin has no API Gateway; the API is served by the myelin gateway',
  ]);
});

test('seed 001 tensorflow fields: signature keys at every level, tensorflow_serving_image, models.dir', () => {
  const yaml = `- name: classifier
  kind: RealtimeAPI
  predictor:
    type: tensorflow
    path: predictor.py
    models:
      paths:
        - name: inception
          model_path: s3://cortex-examples/tensorflow/image-classifier/inception/
          signature_key: serving_default
        - name: iris
          model_path: models/iris
      signature_key: predict
    tensorflow_serving_image: quay.io/cortexlabs/tensorflow-serving-cpu:0.23.0
- name: by-dir
  kind: RealtimeAPI
  predictor:
    type: tensorflow
    model_path: s3://my-bucket/model/
    signature_key: serving_default
- name: dir-models
  kind: RealtimeAPI
  predictor:
    type: tensorflow
    models:
      dir: models/
`;
  const got = loadIn(yaml, PROJECT_FILES);
  assert.ok(got.ok, got.lines.join('\n'));
  const [a, b, c] = got.result.specs;
  assert.deepEqual(a.predictor.models, {
    paths: [
      { name: 'inception', path: 's3://cortex-examples/tensorflow/image-classifier/inception/', signatureKey: 'serving_default' },
      { name: 'iris', path: join(got.dir, 'models/iris') },
    ],
    signatureKey: 'predict',
  });
  assert.equal(a.predictor.tensorflowServingImage, 'quay.io/cortexlabs/tensorflow-serving-cpu:0.23.0');
  assert.equal(b.predictor.modelPath, 's3://my-bucket/model/');
  assert.equal(b.predictor.signatureKey, 'serving_default');
  assert.equal(b.predictor.path, undefined, 'tensorflow may be served without predictor code');
  assert.deepEqual(c.predictor.models, { dir: join(got.dir, 'models') });
  assert.deepEqual(got.lines, [
    '14:5: classifier: predictor.tensorflow_serving_image: warning: has no effect: myelin serves TensorFlow models itself, without TensorFlow Serving',
  ]);
});

test('seed 001 onnx fields and the javascript predictor type (typescript alias)', () => {
  const yaml = `- name: onnx-api
  kind: RealtimeAPI
  predictor:
    type: onnx
    path: onnx_predictor.py
    model_path: model.onnx
    python_path: lib
- name: onnx-multi
  kind: RealtimeAPI
  predictor:
    type: onnx
    models:
      paths:
        - name: a
          model_path: s3://bucket/a.onnx
          signature_key: ignored-but-allowed
- name: ts-api
  kind: RealtimeAPI
  predictor:
    type: typescript
    path: predictor.ts
    python_path: lib
`;
  const got = loadIn(yaml, PROJECT_FILES);
  assert.ok(got.ok, got.lines.join('\n'));
  const [onnx, multi, ts] = got.result.specs;
  assert.equal(onnx.predictor.type, 'onnx');
  assert.equal(onnx.predictor.modelPath, join(got.dir, 'model.onnx'));
  assert.equal(onnx.predictor.pythonPath, join(got.dir, 'lib'));
  assert.deepEqual(multi.predictor.models, { paths: [{ name: 'a', path: 's3://bucket/a.onnx', signatureKey: 'ignored-but-allowed' }] });
  assert.equal(ts.predictor.type, 'javascript');
  assert.equal(ts.predictor.typeAsWritten, 'typescript');
  assert.equal(ts.predictor.path, join(got.dir, 'predictor.ts'));
  assert.deepEqual(got.lines, [
    '16:11: onnx-multi: predictor.models.paths[0].signature_key: warning: has no effect for onnx models (signature defs are a TensorFlow concept)',
    '22:5: ts-api: predictor.python_path: warning: has no effect: the typescript predictor runs no Python code (only python predictors and .py predictor files use it)',
  ]);
});

test('Cortex 0.25 names load unchanged: models.path, paths[].path, multi_model_reloading, log_level, shm_size', () => {
  const yaml = `- name: tf25
  kind: RealtimeAPI
  predictor:
    type: tensorflow
    path: predictor.py
    models:
      path: s3://cortex-examples/tensorflow/iris-classifier/nn/
- name: onnx25
  kind: RealtimeAPI
  predictor:
    type: onnx
    models:
      paths:
        - name: a
          path: models/a
        - name: b
          path: s3://bucket/b/
- name: py25
  kind: RealtimeAPI
  predictor:
    type: python
    path: predictor.py
    multi_model_reloading:
      dir: s3://bucket/models/
    log_level: debug
    shm_size: 1Gi
`;
  const got = loadIn(yaml, PROJECT_FILES);
  assert.ok(got.ok, got.lines.join('\n'));
  assert.deepEqual(got.lines, ['26:5: py25: predictor.shm_size: warning: has no effect: myelin replicas are not containers with a /dev/shm to size']);
  const [tf, onnx, py] = got.result.specs;
  assert.equal(py.predictor.logLevel, 'debug');
  assert.equal(tf.predictor.logLevel, undefined);
  assert.deepEqual(tf.predictor.models, { path: 's3://cortex-examples/tensorflow/iris-classifier/nn/' });
  assert.deepEqual(onnx.predictor.models, {
    paths: [
      { name: 'a', path: join(got.dir, 'models/a') },
      { name: 'b', path: 's3://bucket/b/' },
    ],
  });
  assert.deepEqual(py.predictor.models, { dir: 's3://bucket/models/' });
});

test('myelin additions: policies, tick, panic window and threshold, timeout, max_body_size', () => {
  type Case = { name: string; autoscaling: string; want: Partial<ApiSpec['autoscaling']> };
  const cases: Case[] = [
    { name: 'cortex default tick 10s', autoscaling: 'policy: cortex', want: { policy: 'cortex', tickMs: 10_000, panicWindowMs: 10_000 } },
    { name: 'burst default tick 2s, panic 10% of window', autoscaling: 'policy: burst', want: { policy: 'burst', tickMs: 2_000, panicWindowMs: 6_000 } },
    { name: 'burst: panic window at least one tick', autoscaling: 'policy: burst\n    window: 10s', want: { policy: 'burst', tickMs: 2_000, windowMs: 10_000, panicWindowMs: 2_000 } },
    {
      name: 'burst with every knob',
      autoscaling: 'policy: burst\n    tick: 1s\n    window: 45s\n    panic_window: 5s\n    panic_threshold: 1.5',
      want: { policy: 'burst', tickMs: 1_000, windowMs: 45_000, panicWindowMs: 5_000, panicThreshold: 1.5 },
    },
    { name: 'window need not be a multiple of 10s', autoscaling: 'tick: 5s\n    window: 15s', want: { tickMs: 5_000, windowMs: 15_000, panicWindowMs: 5_000 } },
    { name: 'cpu policy gets target 80%', autoscaling: 'policy: cpu', want: { policy: 'cpu', tickMs: 10_000, targetCpuUtilization: 80 } },
    { name: 'cpu policy with a target', autoscaling: 'policy: cpu\n    target_cpu_utilization: 65', want: { policy: 'cpu', targetCpuUtilization: 65 } },
  ];
  for (const c of cases) {
    const got = loadIn(`- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n  autoscaling:\n    ${c.autoscaling}\n`, PROJECT_FILES);
    assert.ok(got.ok, `${c.name}: ${got.lines.join('\n')}`);
    assert.deepEqual(got.result.specs[0].autoscaling, defaults(got.dir, { autoscaling: c.want }).autoscaling, c.name);
  }
  const got = loadIn(
    '- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n    timeout: 250ms\n  networking:\n    max_body_size: 200M\n',
    PROJECT_FILES,
  );
  assert.ok(got.ok, got.lines.join('\n'));
  assert.equal(got.result.specs[0].predictor.timeoutMs, 250);
  assert.equal(got.result.specs[0].networking.maxBodyBytes, 200e6);
});

test('target_replica_concurrency defaults to processes_per_replica * threads_per_process', () => {
  const got = loadIn('- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n    processes_per_replica: 3\n    threads_per_process: 5\n', PROJECT_FILES);
  assert.ok(got.ok, got.lines.join('\n'));
  assert.equal(got.result.specs[0].autoscaling.targetReplicaConcurrency, 15);
});

test('compute quantities: numbers and strings, null cpu means no request', () => {
  const cases: { cpu: string; mem: string; wantCpu: number; wantMem: number | null }[] = [
    { cpu: '1', mem: '200Mi', wantCpu: 1000, wantMem: 200 * MiB },
    { cpu: '0.5', mem: '1G', wantCpu: 500, wantMem: 1e9 },
    { cpu: '"2"', mem: '"1Gi"', wantCpu: 2000, wantMem: 1024 * MiB },
    { cpu: '200m', mem: '209715200', wantCpu: 200, wantMem: 200 * MiB },
    { cpu: 'null', mem: 'null', wantCpu: 0, wantMem: null },
  ];
  for (const c of cases) {
    const got = loadIn(`- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n  compute:\n    cpu: ${c.cpu}\n    mem: ${c.mem}\n`, PROJECT_FILES);
    assert.ok(got.ok, got.lines.join('\n'));
    assert.deepEqual([got.result.specs[0].compute.cpuMillis, got.result.specs[0].compute.memBytes], [c.wantCpu, c.wantMem], `cpu ${c.cpu}, mem ${c.mem}`);
  }
});

test('the legacy dialect (seed 000) is normalized into the RealtimeAPI model', () => {
  // The example of seed 000, plus its every field.
  const yaml = `- kind: api
  name: my-api
  model: s3://my-bucket/my-model.onnx
  request_handler: handler.py
  compute:
    gpu: 1
- kind: api
  name: everything
  model: models/iris
  model_format: tensorflow
  request_handler: handler.ts
  tf_signature_key: predict
  tracker:
    key: label
    model_type: classification
  compute:
    min_replicas: 2
    max_replicas: 8
    init_replicas: 4
    target_cpu_utilization: 70
    cpu: 1
    gpu: 0
    mem: 1Gi
`;
  const got = loadIn(yaml, PROJECT_FILES);
  assert.ok(got.ok, got.lines.join('\n'));
  const d = got.dir;
  const base = defaults(d);
  const want: ApiSpec[] = [
    {
      ...base,
      name: 'my-api',
      dialect: 'legacy',
      predictor: {
        type: 'onnx',
        typeAsWritten: 'onnx',
        modelPath: 's3://my-bucket/my-model.onnx',
        processesPerReplica: 1,
        threadsPerProcess: 1,
        config: {},
        pythonPath: d,
        env: {},
        requestHandler: join(d, 'handler.py'),
        timeoutMs: 60_000,
      },
      networking: { ...base.networking, endpoint: '/my-api' },
      compute: { cpuMillis: 200, memBytes: null, gpu: 1, inf: 0 },
      autoscaling: { ...base.autoscaling, policy: 'cpu', targetCpuUtilization: 80 },
    },
    {
      ...base,
      name: 'everything',
      dialect: 'legacy',
      predictor: {
        type: 'tensorflow',
        typeAsWritten: 'tensorflow',
        modelPath: join(d, 'models/iris'),
        signatureKey: 'predict',
        processesPerReplica: 1,
        threadsPerProcess: 1,
        config: {},
        pythonPath: d,
        env: {},
        requestHandler: join(d, 'handler.ts'),
        timeoutMs: 60_000,
      },
      networking: { ...base.networking, endpoint: '/everything' },
      compute: { cpuMillis: 1000, memBytes: 1024 * MiB, gpu: 0, inf: 0 },
      monitoring: { modelType: 'classification', key: 'label' },
      autoscaling: { ...base.autoscaling, policy: 'cpu', minReplicas: 2, maxReplicas: 8, initReplicas: 4, targetCpuUtilization: 70 },
    },
  ];
  assert.deepEqual(got.result.specs, want);
});

test('legacy model_format is inferred from the model path as seed 000 says', () => {
  const cases: { model: string; want: string }[] = [
    { model: 's3://my-bucket/my-model.onnx', want: 'onnx' },
    { model: 's3://my-bucket/MODEL.ONNX', want: 'onnx' },
    { model: 'model.onnx', want: 'onnx' },
    { model: 's3://my-bucket/exported_model.zip', want: 'tensorflow' },
    { model: 's3://my-bucket/exported_model', want: 'tensorflow' },
    { model: 's3://my-bucket/exported_model/', want: 'tensorflow' },
    { model: 'https://example.com/models/m.onnx?version=2', want: 'onnx' },
    { model: 'models/iris', want: 'tensorflow' },
  ];
  for (const c of cases) {
    const got = loadIn(`- kind: api\n  name: a\n  model: ${c.model}\n`, PROJECT_FILES);
    assert.ok(got.ok, `${c.model}: ${got.lines.join('\n')}`);
    assert.equal(got.result.specs[0].predictor.type, c.want, c.model);
  }
});

test('an early-Cortex "kind: deployment" item is accepted with a warning', () => {
  const got = loadIn('- kind: deployment\n  name: iris\n\n- kind: api\n  name: classifier\n  model: s3://bucket/iris.onnx\n', PROJECT_FILES);
  assert.ok(got.ok, got.lines.join('\n'));
  assert.deepEqual(got.result.specs.map((s) => s.name), ['classifier']);
  assert.deepEqual(got.lines, [
    '1:3: iris: kind: warning: has no effect: "kind: deployment" only named the deployment in early Cortex; myelin deploys each API by its own name',
  ]);
});

test('anchors, aliases and merge keys work, and positions follow them', () => {
  const yaml = `- name: a
  kind: RealtimeAPI
  predictor: &pred
    type: python
    path: predictor.py
  autoscaling: &scale
    min_replicas: 2
    max_replicas: 4
- name: b
  kind: RealtimeAPI
  predictor: *pred
  autoscaling:
    <<: *scale
    max_replicas: 6
`;
  const got = loadIn(yaml, PROJECT_FILES);
  assert.ok(got.ok, got.lines.join('\n'));
  assert.deepEqual(got.result.specs.map((s) => [s.name, s.autoscaling.minReplicas, s.autoscaling.maxReplicas]), [
    ['a', 2, 4],
    ['b', 2, 6],
  ]);
  const bad = loadIn(yaml.replace('max_replicas: 6', 'max_replicas: 1'), PROJECT_FILES);
  assert.deepEqual(bad.lines, ['7:5: b: autoscaling.min_replicas: cannot be greater than max_replicas (2 > 1)']);
});

test('resolved specs are deeply frozen', () => {
  const got = loadIn('- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n    config: {a: {b: [1]}}\n', PROJECT_FILES);
  assert.ok(got.ok);
  const spec = got.result.specs[0];
  assert.ok(Object.isFrozen(spec) && Object.isFrozen(spec.predictor) && Object.isFrozen(spec.autoscaling));
  assert.ok(Object.isFrozen((spec.predictor.config.a as { b: number[] }).b));
  assert.throws(() => {
    (spec.autoscaling as { minReplicas: number }).minReplicas = 5;
  }, TypeError);
});

test('--target kubernetes: Inferentia is not reported as having no effect', () => {
  const yaml = '- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: tensorflow\n    model_path: s3://my-bucket/m/\n  compute:\n    inf: 1\n';
  const local = loadIn(yaml, PROJECT_FILES);
  assert.deepEqual(local.lines, ['7:5: iris: compute.inf: warning: has no effect when replicas run as local processes (Inferentia needs --target kubernetes)']);
  const kube = loadIn(yaml, PROJECT_FILES, { target: 'kubernetes' });
  assert.ok(kube.ok);
  assert.deepEqual(kube.lines, []);
  assert.equal(kube.result.specs[0].compute.inf, 1);
});

test('keys named __proto__ stay plain data and pollute nothing', () => {
  const got = loadIn('- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n    config:\n      __proto__: {polluted: 1}\n    env:\n      __proto__: x\n', PROJECT_FILES);
  assert.ok(got.ok, got.lines.join('\n'));
  const p = got.result.specs[0].predictor;
  assert.deepEqual(Object.keys(p.config), ['__proto__']);
  assert.deepEqual(Object.entries(p.env), [['__proto__', 'x']]);
  assert.equal(({} as { polluted?: number }).polluted, undefined);
});
