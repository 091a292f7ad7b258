/**
 * Open Inference Protocol v2 through a real gateway to real replicas (node:http on loopback, real
 * onnxruntime-node and TF.js): the protocol's JSON examples, a binary tensor request and response built
 * by hand as Triton's binary tensor data extension describes them, metadata datatypes and shapes,
 * validation 400s naming the tensor, 404s for unknown models and versions, health, and the answers
 * compared with onnxruntime's own.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { PACKAGE_VERSION } from '../../../adapters/fs/package-root.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { pino } from 'pino';
import { BehaviorSubject } from 'rxjs';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import type { ApiSpec } from '../../../core/config/api-spec.js';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import type { ReplicaInfo } from '../../../core/ports/orchestrator-target.js';
import { Gateway } from '../../../serving/gateway/gateway.js';
import { resolveV2Api } from '../../../serving/gateway/protocol-v2-routes.js';
import { startReplica, type Replica } from '../../../serving/replica/replica-server.js';
import { apiSpecFixture } from '../../harness/api-spec-fixture.js';
import { httpRequest, replicaInfo, type HttpResult } from '../../harness/gateway-replicas.js';
import { addModel, int64Model, irisModel, writeOnnxModel } from '../../harness/model-builders.js';
import { BEHAVIOUR_PREDICTOR } from '../replica/replica-test-kit.js';

const silent = pino({ level: 'silent' });
const example = (p: string): string => fileURLToPath(new URL(`../../../examples/${p}`, import.meta.url));
const IRIS_ROWS = [
  [5.1, 3.5, 1.4, 0.2],
  [6.3, 3.3, 6.0, 2.5],
];

async function exampleSpec(project: string): Promise<ApiSpec> {
  const { specs } = await loadApiSpecsFromFile(example(`${project}/myelin.yaml`), { files: nodeProjectFileSystem });
  return specs[0];
}

function json(r: HttpResult): Record<string, unknown> {
  return JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;
}

/** onnxruntime's own answer for the iris rows, to compare with. */
async function irisByOnnxruntime(): Promise<{ label: number[]; probabilities: number[] }> {
  const session = await ort.InferenceSession.create(example('iris-onnx/model/iris.onnx'));
  try {
    const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(IRIS_ROWS.flat()), [2, 4]) });
    return { label: Array.from(out.label.data as BigInt64Array, Number), probabilities: Array.from(out.probabilities.data as Float32Array) };
  } finally {
    await session.release();
  }
}

describe('Open Inference Protocol v2 through the gateway', () => {
  let dir: string;
  let gw: Gateway;
  let port: number;
  const replicas$ = new BehaviorSubject<readonly ReplicaInfo[]>([]);
  const replicas: Replica[] = [];
  const infos: ReplicaInfo[] = [];
  let want: { label: number[]; probabilities: number[] };

  async function serve(spec: ApiSpec, executor: 'in-thread' | 'worker-threads' = 'in-thread'): Promise<void> {
    const r = await startReplica({ spec, log: silent, executor });
    await r.ready;
    replicas.push(r);
    infos.push(replicaInfo(spec.name, r.id, r.address.port!));
    await gw.upsertApi(spec);
  }

  const send = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpResult> =>
    httpRequest(port, {
      method,
      path,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body) }),
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'myelin-v2-'));
    await mkdir(join(dir, 'iris', '1'), { recursive: true });
    await mkdir(join(dir, 'iris', '2'), { recursive: true });
    await writeOnnxModel(join(dir, 'iris', '1', 'iris.onnx'), irisModel());
    await writeOnnxModel(join(dir, 'iris', '2', 'iris.onnx'), irisModel({ intercept: [0, 0, 100] }));
    await writeOnnxModel(join(dir, 'add.onnx'), addModel());
    await writeOnnxModel(join(dir, 'ids.onnx'), int64Model());
    gw = new Gateway({ host: '127.0.0.1', port: 0, replicas$, closeGraceMs: 2000 }, silent);
    await gw.start();
    port = gw.sharedPort();
    want = await irisByOnnxruntime();
    // The iris example with its ONNXPredictor (predictor.ts): v2 skips the predictor's pre/post processing.
    await serve(await exampleSpec('iris-onnx'));
    // The TF.js example (a layers model) with its TensorFlowPredictor.
    await serve(await exampleSpec('tfjs-model'));
    // Path-less onnx, one model.
    await serve(apiSpecFixture({ name: 'iris-bare', projectDir: dir, predictor: { type: 'onnx', modelPath: example('iris-onnx/model/iris.onnx') } }));
    // A multi-model onnx API in worker threads (the v2 call crosses to the worker as plain data).
    await serve(
      apiSpecFixture({
        name: 'zoo',
        projectDir: dir,
        predictor: {
          type: 'onnx',
          processesPerReplica: 2,
          models: { paths: [{ name: 'iris', path: join(dir, 'iris') }, { name: 'add', path: join(dir, 'add.onnx') }, { name: 'ids', path: join(dir, 'ids.onnx') }] },
        },
      }),
      'worker-threads',
    );
    // A TypeScript Predictor: its models are its own, not the protocol's.
    await serve(apiSpecFixture({ name: 'plain-js', predictor: { type: 'javascript', path: BEHAVIOUR_PREDICTOR } }));
    replicas$.next([...infos]);
  });

  after(async () => {
    await gw?.close();
    await Promise.all(replicas.map((r) => r.close({ graceMs: 500 })));
    await rm(dir, { recursive: true, force: true });
  });

  test('health and server metadata', async () => {
    const live = await send('GET', '/v2/health/live');
    assert.deepEqual([live.status, json(live)], [200, { live: true }]);
    const ready = await send('GET', '/v2/health/ready');
    assert.deepEqual([ready.status, json(ready)], [200, { ready: true }]);
    const meta = await send('GET', '/v2');
    assert.equal(meta.status, 200);
    assert.deepEqual(json(meta), { name: 'myelin', version: PACKAGE_VERSION, extensions: ['binary_tensor_data'] });
    assert.equal((await send('POST', '/v2/health/live', '{}')).status, 405);
  });

  test('model metadata: the real inputs and outputs with v2 datatypes, -1 for dynamic dims', async () => {
    const iris = await send('GET', '/v2/models/iris-classifier');
    assert.equal(iris.status, 200, iris.body.toString());
    assert.deepEqual(json(iris), {
      name: 'iris-classifier',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [
        { name: 'label', datatype: 'INT64', shape: [-1] },
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] },
      ],
    });
    const ids = json(await send('GET', '/v2/models/ids/versions/1'));
    assert.deepEqual(ids.inputs, [{ name: 'ids', datatype: 'INT64', shape: [-1, 3] }]);
    const zooIris = json(await send('GET', '/v2/models/iris'));
    assert.deepEqual(zooIris.versions, ['1', '2']);
    const tf = json(await send('GET', '/v2/models/iris-tfjs'));
    assert.equal(tf.platform, 'tensorflowjs_layers');
    const tfIn = tf.inputs as Array<Record<string, unknown>>;
    const tfOut = tf.outputs as Array<Record<string, unknown>>;
    assert.deepEqual([tfIn.length, tfIn[0].datatype, tfIn[0].shape], [1, 'FP32', [-1, 4]]);
    assert.deepEqual([tfOut.length, tfOut[0].datatype, tfOut[0].shape], [1, 'FP32', [-1, 3]]);
  });

  test('model readiness', async () => {
    for (const path of ['/v2/models/iris-classifier/ready', '/v2/models/iris/versions/2/ready', '/v2/models/add/ready', '/v2/models/iris-tfjs/ready']) {
      const r = await send('GET', path);
      assert.equal(r.status, 200, `${path}: ${r.body.toString()}`);
      assert.equal(json(r).ready, true, path);
    }
    const noVersion = await send('GET', '/v2/models/iris/versions/7/ready');
    assert.equal(noVersion.status, 404);
    assert.match(String(json(noVersion).error), /no version 7/);
  });

  test('JSON infer as in the protocol example (id, requested outputs): onnxruntime\'s answer, predictor code skipped', async () => {
    for (const name of ['iris-classifier', 'iris-bare', 'iris']) {
      const r = await send('POST', `/v2/models/${name}/infer`, {
        id: '42',
        inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: IRIS_ROWS.flat() }],
        outputs: [{ name: 'probabilities' }, { name: 'label' }],
      });
      assert.equal(r.status, 200, `${name}: ${r.body.toString()}`);
      assert.match(String(r.headers['content-type']), /^application\/json/);
      const body = json(r);
      assert.equal(body.model_name, name);
      assert.equal(body.model_version, name === 'iris' ? '2' : '1');
      assert.equal(body.id, '42');
      const outputs = body.outputs as Array<{ name: string; datatype: string; shape: number[]; data: number[] }>;
      assert.deepEqual(outputs.map((o) => [o.name, o.datatype, o.shape]), [
        ['probabilities', 'FP32', [2, 3]],
        ['label', 'INT64', [2]],
      ]);
      if (name === 'iris') {
        // Version 2's intercept makes every row "virginica".
        assert.deepEqual(outputs[1].data, [2, 2]);
        continue;
      }
      assert.deepEqual(outputs[1].data, want.label);
      outputs[0].data.forEach((p, i) => assert.ok(Math.abs(p - want.probabilities[i]) < 1e-6, `${name} p[${i}] ${p} vs ${want.probabilities[i]}`));
    }
    // Nested data is read row-major; without "outputs", every output comes back; version 1 by path.
    const nested = await send('POST', '/v2/models/iris/versions/1/infer', { inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: IRIS_ROWS }] });
    assert.equal(nested.status, 200, nested.body.toString());
    const nb = json(nested);
    assert.equal(nb.model_version, '1');
    assert.deepEqual((nb.outputs as Array<{ name: string; data: number[] }>).map((o) => o.name), ['label', 'probabilities']);
    assert.deepEqual((nb.outputs as Array<{ data: number[] }>)[0].data, want.label);
  });

  test('several inputs, INT64 beyond 2^53 kept exact, TF.js', async () => {
    const add = await send('POST', '/v2/models/add/infer', {
      inputs: [
        { name: 'a', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] },
        { name: 'b', shape: [1, 3], datatype: 'FP32', data: [10, 20, 30] },
      ],
      outputs: [{ name: 'sum' }],
    });
    assert.equal(add.status, 200, add.body.toString());
    assert.deepEqual(json(add).outputs, [{ name: 'sum', datatype: 'FP32', shape: [1, 3], data: [11, 22, 33] }]);
    const big = await send('POST', '/v2/models/ids/infer', `{"inputs":[{"name":"ids","shape":[1,3],"datatype":"INT64","data":[1,"4000000000000000000",3]}]}`);
    assert.equal(big.status, 200, big.body.toString());
    assert.match(big.body.toString(), /"name":"doubled","datatype":"INT64","shape":\[1,3\],"data":\[2,8000000000000000000,6\]/);
    const tf = await send('POST', '/v2/models/iris-tfjs/infer', { inputs: [{ name: 'features', shape: [2, 4], datatype: 'FP32', data: IRIS_ROWS.flat() }] });
    assert.equal(tf.status, 200, tf.body.toString());
    const out = (json(tf).outputs as Array<{ datatype: string; shape: number[]; data: number[] }>)[0];
    assert.deepEqual([out.datatype, out.shape], ['FP32', [2, 3]]);
    assert.ok(Math.abs(out.data.slice(0, 3).reduce((a, b) => a + b, 0) - 1) < 1e-5, 'softmax rows sum to 1');
  });

  test('binary tensor data extension: a request and a response built and read by hand', async () => {
    const header = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', parameters: { binary_data_size: 32 } }],
        outputs: [{ name: 'probabilities', parameters: { binary_data: true } }, { name: 'label', parameters: { binary_data: false } }],
      }),
    );
    const tensor = Buffer.alloc(32);
    IRIS_ROWS.flat().forEach((v, i) => tensor.writeFloatLE(v, i * 4));
    const r = await send('POST', '/v2/models/iris-classifier/infer', Buffer.concat([header, tensor]), {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(header.length),
    });
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    const jsonLength = Number(r.headers['inference-header-content-length']);
    assert.ok(jsonLength > 0 && jsonLength < r.body.length);
    const head = JSON.parse(r.body.subarray(0, jsonLength).toString('utf8')) as { outputs: Array<Record<string, unknown>> };
    assert.deepEqual(head.outputs[0], { name: 'probabilities', datatype: 'FP32', shape: [2, 3], parameters: { binary_data_size: 24 } });
    assert.deepEqual(head.outputs[1], { name: 'label', datatype: 'INT64', shape: [2], data: want.label });
    const blob = r.body.subarray(jsonLength);
    assert.equal(blob.length, 24);
    for (let i = 0; i < 6; i++) assert.ok(Math.abs(blob.readFloatLE(i * 4) - want.probabilities[i]) < 1e-6, `p[${i}]`);

    // binary_data_output asks for every output in binary; INT64 comes as 8-byte little-endian integers.
    const all = await send('POST', '/v2/models/iris-classifier/infer', {
      parameters: { binary_data_output: true },
      inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: IRIS_ROWS.flat() }],
    });
    assert.equal(all.status, 200, all.body.toString());
    const n = Number(all.headers['inference-header-content-length']);
    const allHead = JSON.parse(all.body.subarray(0, n).toString('utf8')) as { outputs: Array<{ name: string; parameters: { binary_data_size: number } }> };
    assert.deepEqual(allHead.outputs.map((o) => [o.name, o.parameters.binary_data_size]), [['label', 16], ['probabilities', 24]]);
    const labels = all.body.subarray(n, n + 16);
    assert.deepEqual([Number(labels.readBigInt64LE(0)), Number(labels.readBigInt64LE(8))], want.label);
  });

  test('validation: 400s naming the tensor', async () => {
    const SHORT_BINARY = '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":12}}]}';
    const FULL_BINARY = SHORT_BINARY.replace('12', '16');
    const iris = (input: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4], ...input }], ...extra });
    const cases: Array<{ name: string; body: unknown; headers?: Record<string, string>; want: RegExp }> = [
      { name: 'datatype', body: iris({ datatype: 'FP64' }), want: /^input "input": datatype FP64 does not match the model's FP32$/ },
      { name: 'unknown datatype', body: iris({ datatype: 'FP8' }), want: /^input "input": unknown datatype "FP8"/ },
      { name: 'shape', body: iris({ shape: [1, 3], data: [1, 2, 3] }), want: /^input "input": shape \[1, 3\] does not fit the model's \[-1, 4\]$/ },
      { name: 'data count', body: iris({ shape: [2, 4] }), want: /^input "input": shape \[2, 4\] holds 8 values, got 4/ },
      { name: 'element', body: iris({ data: [1, 2, 'x', 4] }), want: /^input "input": expected float32 values, got string "x"/ },
      { name: 'unknown input', body: iris({ name: 'nope' }), want: /^unknown input "nope" \(the model's inputs: input\)$/ },
      { name: 'unknown output', body: iris({}, { outputs: [{ name: 'logits' }] }), want: /^unknown output "logits" \(the model's outputs: label, probabilities\)$/ },
      { name: 'no inputs', body: { inputs: [] }, want: /"inputs" must be a non-empty list/ },
      { name: 'not json', body: 'nope', want: /^invalid JSON/ },
      {
        name: 'binary size',
        body: Buffer.concat([Buffer.from(SHORT_BINARY), Buffer.alloc(12)]),
        headers: { 'inference-header-content-length': String(SHORT_BINARY.length) },
        want: /^input "input": binary_data_size is 12 bytes, but the shape holds 4 float32 values \(16 bytes\)$/,
      },
      {
        name: 'binary bytes left over',
        body: Buffer.concat([Buffer.from(FULL_BINARY), Buffer.alloc(17)]),
        headers: { 'inference-header-content-length': String(FULL_BINARY.length) },
        want: /^1 bytes of binary data after the last binary input are not claimed/,
      },
      {
        name: 'binary without the header',
        body: Buffer.from(SHORT_BINARY),
        want: /^input "input" has binary_data_size but the request has no Inference-Header-Content-Length header$/,
      },
    ];
    for (const c of cases) {
      const r = await send('POST', '/v2/models/iris-classifier/infer', c.body, c.headers);
      assert.equal(r.status, 400, `${c.name}: ${r.body.toString()}`);
      assert.match(String(json(r).error), c.want, c.name);
    }
    const two = await send('POST', '/v2/models/add/infer', { inputs: [{ name: 'a', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] });
    assert.equal(two.status, 400);
    assert.match(String(json(two).error), /^input "b" is missing \(the model's inputs: a, b\)$/);
  });

  test('unknown models and versions are 404s; a model-less predictor is 501; the autoscaler sees v2 requests', async () => {
    const before = gw.stats('iris-classifier')!.count;
    const unknown = await send('POST', '/v2/models/nope/infer', { inputs: [] });
    assert.equal(unknown.status, 404);
    assert.match(String(json(unknown).error), /^model "nope" is not served here \(models: add, ids, iris, iris-bare, iris-classifier, iris-tfjs, plain-js\)$/);
    const version = await send('GET', '/v2/models/iris-classifier/versions/3');
    assert.equal(version.status, 404);
    assert.match(String(json(version).error), /has no version 3 \(versions: 1\)/);
    // The multi-model API's own name: its replica says which models to address.
    const zoo = await send('GET', '/v2/models/zoo');
    assert.equal(zoo.status, 404);
    assert.match(String(json(zoo).error), /not served by this API \(models: iris, add, ids\)/);
    const js = await send('GET', '/v2/models/plain-js');
    assert.equal(js.status, 501);
    assert.match(String(json(js).error), /predictor\.type javascript\) has no model the Open Inference Protocol can run/);
    assert.equal((await send('GET', '/v2/models/iris-classifier/infer')).status, 405);
    // Counted by the gateway like any prediction of the API (metadata + 405 since `before`).
    assert.equal(gw.stats('iris-classifier')!.count, before + 2);
  });

  test('an API with networking.api_keys requires its key on the v2 routes too', async () => {
    const spec = apiSpecFixture({ name: 'iris-bare', projectDir: dir, predictor: { type: 'onnx', modelPath: example('iris-onnx/model/iris.onnx') } });
    await gw.upsertApi(spec, { apiKeys: ['s3cret'] });
    try {
      const body = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: IRIS_ROWS[0] }] };
      assert.equal((await send('POST', '/v2/models/iris-bare/infer', body)).status, 401);
      assert.equal((await send('GET', '/v2/models/iris-bare', undefined, { authorization: 'Bearer wrong' })).status, 401);
      assert.equal((await send('POST', '/v2/models/iris-bare/infer', body, { authorization: 'Bearer s3cret' })).status, 200);
      assert.equal((await send('GET', '/v2/models/iris-bare/ready', undefined, { 'x-api-key': 's3cret' })).status, 200);
    } finally {
      await gw.upsertApi(spec);
    }
    assert.equal((await send('GET', '/v2/models/iris-bare')).status, 200);
  });

  test('server readiness follows the replicas', async () => {
    replicas$.next(infos.filter((i) => i.api !== 'iris-bare'));
    try {
      const r = await send('GET', '/v2/health/ready');
      assert.deepEqual([r.status, json(r)], [503, { ready: false }]);
      const infer = await send('POST', '/v2/models/iris-bare/infer', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
      assert.equal(infer.status, 503);
    } finally {
      replicas$.next([...infos]);
    }
    assert.equal((await send('GET', '/v2/health/ready')).status, 200);
  });
});

describe('resolveV2Api', () => {
  const entry = (name: string, predictor?: Record<string, unknown>) =>
    ({ spec: { name, networking: { endpoint: `/${name}`, localPort: 8888, maxBodyBytes: 1 }, autoscaling: { maxReplicaConcurrency: 1 }, ...(predictor ? { predictor } : {}) }, ctx: {} }) as never;
  const cases: Array<{ name: string; apis: unknown[]; model: string; want: string | RegExp }> = [
    { name: 'single-model API by its name', apis: [entry('a', { type: 'onnx' })], model: 'a', want: 'a' },
    { name: 'a models.paths name', apis: [entry('a', { type: 'onnx' }), entry('zoo', { type: 'onnx', models: { paths: [{ name: 'm' }] } })], model: 'm', want: 'zoo' },
    { name: 'a name in two APIs', apis: [entry('x', { models: { paths: [{ name: 'm' }] } }), entry('y', { models: { paths: [{ name: 'm' }] } })], model: 'm', want: /served by several APIs \(x, y\)/ },
    { name: 'the one models.dir API', apis: [entry('a'), entry('d', { models: { dir: '/m' } })], model: 'whatever', want: 'd' },
    { name: 'two models.dir APIs', apis: [entry('d1', { models: { dir: '/m' } }), entry('d2', { models: { dir: '/n' } })], model: 'q', want: /cannot be told apart/ },
    { name: 'unknown', apis: [entry('a')], model: 'b', want: /^model "b" is not served here \(models: a\)$/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = resolveV2Api(c.apis as never[], c.model) as { api?: { spec: { name: string } }; error?: string };
      if (typeof c.want === 'string') assert.equal(got.api?.spec.name, c.want, JSON.stringify(got));
      else assert.match(String(got.error), c.want);
    });
  }
});
