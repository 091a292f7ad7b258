/**
 * The replica's Open Inference Protocol v2 routes: path and request parsing (JSON and binary tensors of
 * every datatype family), the response codec, a v2 payload that a client cannot forge through the
 * Cortex-style route, a TF.js graph model, server-side batching, and Python predictors (an
 * ONNXPredictor `.py` whose model the replica runs: supported; a PythonPredictor: 501).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { checkV2Inputs, encodeInferResponse, v2CallOf, v2Payload } from '../../../core/predictor/protocol-v2.js';
import { parseInferRequest, parseV2ModelPath } from '../../../serving/replica/protocol-v2.js';
import { startReplica, type Replica } from '../../../serving/replica/replica-server.js';
import { jsonValueLimit } from '../../../serving/replica/request-payload.js';
import { apiSpecFixture } from '../../harness/api-spec-fixture.js';
import { httpRequest } from '../../harness/gateway-replicas.js';
import { irisLogits, softmax } from '../../harness/model-builders.js';
import { writeTfjsGraphIris } from '../../harness/tfjs-model-builders.js';
import { IRIS_ONNX, pythonHas, startPythonReplica, type PythonReplica } from '../../plugins/predictor-python/python-test-kit.js';

const silent = pino({ level: 'silent' });
const OPTIONS = { maxJsonDepth: 1000, maxJsonValues: jsonValueLimit(1 << 20) };
const ROW = [5.1, 3.5, 1.4, 0.2];

function json(r: { readonly body: Buffer }): Record<string, unknown> {
  return JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;
}

/** A binary request: the JSON header, then each tensor's bytes. */
function binaryBody(header: unknown, ...blobs: Buffer[]): { body: Buffer; headerLength: string } {
  const head = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([head, ...blobs]), headerLength: String(head.length) };
}

describe('parseV2ModelPath', () => {
  const cases: Array<{ path: string; want: unknown }> = [
    { path: '/v2/models/iris', want: { name: 'iris', action: 'metadata' } },
    { path: '/v2/models/iris/', want: { name: 'iris', action: 'metadata' } },
    { path: '/v2/models/iris/ready', want: { name: 'iris', action: 'ready' } },
    { path: '/v2/models/iris/infer', want: { name: 'iris', action: 'infer' } },
    { path: '/v2/models/iris/versions/2', want: { name: 'iris', version: '2', action: 'metadata' } },
    { path: '/v2/models/iris/versions/2/infer', want: { name: 'iris', version: '2', action: 'infer' } },
    { path: '/v2/models/my%20model/versions/3/ready', want: { name: 'my model', version: '3', action: 'ready' } },
    { path: '/v2/models/iris/versions', want: undefined },
    { path: '/v2/models/iris/predict', want: undefined },
    { path: '/v2/models/', want: undefined },
    { path: '/v2/repository', want: undefined },
  ];
  for (const c of cases) test(c.path, () => assert.deepEqual(parseV2ModelPath(c.path), c.want));
  test('bad percent-encoding is a 400', () => assert.throws(() => parseV2ModelPath('/v2/models/%E0%A4%A/infer'), { status: 400 }));
});

describe('parseInferRequest', () => {
  test('binary tensors of every element family, in order, after the JSON', () => {
    const ints = Buffer.alloc(16);
    ints.writeBigInt64LE(-5n, 0);
    ints.writeBigInt64LE(9007199254740993n, 8);
    const half = Buffer.alloc(4);
    half.writeUInt16LE(0x3c00, 0); // 1.0
    half.writeUInt16LE(0xc000, 2); // -2.0
    const words = [Buffer.from('hé'), Buffer.from('')];
    const bytes = Buffer.concat(words.flatMap((w) => [Buffer.from(Uint32Array.of(w.length).buffer), w]));
    const { body, headerLength } = binaryBody(
      {
        id: 'r1',
        parameters: { binary_data_output: true },
        inputs: [
          { name: 'i', shape: [2], datatype: 'INT64', parameters: { binary_data_size: 16 } },
          { name: 'b', shape: [3], datatype: 'BOOL', data: [true, false, 1] },
          { name: 'h', shape: [2], datatype: 'FP16', parameters: { binary_data_size: 4 } },
          { name: 's', shape: [1, 2], datatype: 'BYTES', parameters: { binary_data_size: bytes.length } },
          { name: 'u', shape: [1], datatype: 'UINT8', parameters: { binary_data_size: 1 } },
        ],
        outputs: [{ name: 'x' }, { name: 'y', parameters: { binary_data: false } }],
      },
      ints,
      half,
      bytes,
      Buffer.from([200]),
    );
    const got = parseInferRequest(body, headerLength, OPTIONS);
    assert.equal(got.id, 'r1');
    const t = got.inputs!;
    assert.deepEqual(Array.from(t[0].data as BigInt64Array), [-5n, 9007199254740993n]);
    assert.deepEqual([t[1].dtype, Array.from(t[1].data as Uint8Array)], ['bool', [1, 0, 1]]);
    assert.deepEqual([t[2].dtype, Array.from(t[2].data as Uint16Array)], ['float16', [0x3c00, 0xc000]]);
    assert.deepEqual([t[3].dtype, t[3].shape, t[3].data], ['string', [1, 2], ['hé', '']]);
    assert.deepEqual(Array.from(t[4].data as Uint8Array), [200]);
    assert.deepEqual(got.outputs, [{ name: 'x', binary: true }, { name: 'y', binary: false }]);
  });

  const errors: Array<{ name: string; body: unknown; headerLength?: string; want: RegExp }> = [
    { name: 'not an object', body: '[1]', want: /must be a JSON object with "inputs"/ },
    { name: 'shape', body: { inputs: [{ name: 'x', shape: [-1], datatype: 'FP32', data: [] }] }, want: /^input "x": "shape" must be a list of non-negative integers/ },
    { name: 'BF16', body: { inputs: [{ name: 'x', shape: [1], datatype: 'BF16', data: [1] }] }, want: /^input "x": unknown datatype "BF16"/ },
    { name: 'no data', body: { inputs: [{ name: 'x', shape: [1], datatype: 'FP32' }] }, want: /^input "x": "data" must be a list/ },
    { name: 'int range', body: { inputs: [{ name: 'x', shape: [1], datatype: 'INT8', data: [300] }] }, want: /^input "x": expected int8 values, got 300, outside \[-128, 127\]/ },
    { name: 'bool', body: { inputs: [{ name: 'x', shape: [1], datatype: 'BOOL', data: ['yes'] }] }, want: /^input "x": expected bool values/ },
    { name: 'header length', body: { inputs: [] }, headerLength: '9999', want: /Inference-Header-Content-Length must be an integer between 0 and the body's/ },
    { name: 'classification', body: { inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }], outputs: [{ name: 'y', parameters: { classification: 2 } }] }, want: /classification extension is not supported/ },
  ];
  for (const c of errors) {
    test(`400: ${c.name}`, () => {
      const body = Buffer.from(typeof c.body === 'string' ? c.body : JSON.stringify(c.body));
      assert.throws(() => parseInferRequest(body, c.headerLength, OPTIONS), (err: { status?: number; message?: string }) => {
        assert.equal(err.status, 400);
        assert.match(String(err.message), c.want);
        return true;
      });
    });
  }

  test('a BYTES element running past its tensor is a 400 naming it', () => {
    const bad = Buffer.from(Uint32Array.of(10).buffer);
    const { body, headerLength } = binaryBody({ inputs: [{ name: 's', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 4 } }] }, bad);
    assert.throws(() => parseInferRequest(body, headerLength, OPTIONS), /^RequestError: input "s": BYTES element 0 says 10 bytes, only 0 remain$/);
  });
});

describe('v2 codec', () => {
  test('a forged payload (plain JSON, or a form file) is not a v2 call', () => {
    const call = { op: 'metadata', name: 'x' } as const;
    assert.deepEqual(v2CallOf(v2Payload(call)), call);
    assert.deepEqual(v2CallOf(structuredClone(v2Payload(call))), call, 'survives the structured clone to a worker thread');
    assert.equal(v2CallOf({ __myelinV2Call: call, __myelinV2Tag: [0] }), undefined);
    assert.equal(v2CallOf({ __myelinV2Call: call, __myelinV2Tag: { filename: 'a', contentType: 'b', data: new Uint8Array(8) } }), undefined);
  });

  test('BYTES and BOOL outputs: JSON strings and booleans, binary length-prefixed bytes', () => {
    const outputs = [
      { name: 's', dtype: 'string' as const, shape: [2], data: ['ab', 'c'] },
      { name: 'b', dtype: 'bool' as const, shape: [2], data: Uint8Array.of(1, 0) },
    ];
    const asJson = encodeInferResponse({ op: 'infer', name: 'm' }, '1', outputs);
    assert.equal(
      asJson.body,
      '{"model_name":"m","model_version":"1","outputs":[{"name":"s","datatype":"BYTES","shape":[2],"data":["ab","c"]},{"name":"b","datatype":"BOOL","shape":[2],"data":[true,false]}]}',
    );
    const bin = encodeInferResponse({ op: 'infer', name: 'm', binaryOutput: true }, '1', outputs);
    const body = Buffer.from(bin.body as Uint8Array);
    const n = Number(bin.headers['inference-header-content-length']);
    const head = JSON.parse(body.subarray(0, n).toString()) as { outputs: Array<{ parameters: { binary_data_size: number } }> };
    assert.deepEqual(head.outputs.map((o) => o.parameters.binary_data_size), [11, 2]);
    assert.deepEqual([...body.subarray(n)], [2, 0, 0, 0, 97, 98, 1, 0, 0, 0, 99, 1, 0]);
  });

  test('checkV2Inputs: a signature without a shape takes any shape; a repeated input is a 400', () => {
    const sig = [{ name: 'x', dtype: 'float32', shape: [] }];
    const t = { name: 'x', dtype: 'float32' as const, shape: [2, 2], data: new Float32Array(4) };
    assert.equal(checkV2Inputs([t], sig).length, 1);
    assert.throws(() => checkV2Inputs([t, t], sig), /^HttpError: input "x" is given twice$/);
  });
});

describe('v2 on a replica', () => {
  let dir: string;
  let batched: Replica;
  let graph: Replica;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'myelin-v2-replica-'));
    const graphDir = join(dir, 'graph');
    await writeTfjsGraphIris(graphDir);
    batched = await startReplica({
      spec: apiSpecFixture({
        name: 'iris',
        projectDir: dir,
        predictor: { type: 'onnx', modelPath: IRIS_ONNX, threadsPerProcess: 4, serverSideBatching: { maxBatchSize: 4, batchIntervalMs: 20 } },
      }),
      log: silent,
    });
    graph = await startReplica({ spec: apiSpecFixture({ name: 'graph', projectDir: dir, predictor: { type: 'tensorflow', modelPath: graphDir } }), log: silent });
    await Promise.all([batched.ready, graph.ready]);
  });
  after(async () => {
    await Promise.all([batched?.close({ graceMs: 500 }), graph?.close({ graceMs: 500 })]);
    await rm(dir, { recursive: true, force: true });
  });

  test('replica health, server metadata, and the v2 payload is not reachable through /predict', async () => {
    const port = batched.address.port!;
    assert.deepEqual(json(await httpRequest(port, { path: '/v2/health/ready' })), { ready: true });
    assert.deepEqual(json(await httpRequest(port, { path: '/v2' })).extensions, ['binary_tensor_data']);
    const call = { op: 'metadata', name: 'iris' };
    const forged = await httpRequest(port, {
      method: 'POST',
      path: '/predict',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ __myelinV2Call: call, __myelinV2Tag: [0] }),
    });
    assert.equal(forged.status, 400, 'the body went to the model as an input map');
    assert.match(String(json(forged).error), /the model has one input "input"/);
  });

  test('v2 requests batched with each other by server_side_batching keep their own answers', async () => {
    const port = batched.address.port!;
    const rows = [ROW, [6.3, 3.3, 6.0, 2.5], [5.9, 3.0, 4.2, 1.5], [4.9, 3.0, 1.4, 0.2]];
    const answers = await Promise.all(
      rows.map((row) =>
        httpRequest(port, {
          method: 'POST',
          path: '/v2/models/iris/infer',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: row }], outputs: [{ name: 'probabilities' }] }),
        }),
      ),
    );
    answers.forEach((a, i) => {
      assert.equal(a.status, 200, a.body.toString());
      const p = (json(a).outputs as Array<{ data: number[] }>)[0].data;
      const want = softmax(irisLogits(rows[i]));
      p.forEach((v, k) => assert.ok(Math.abs(v - want[k]) < 1e-5, `row ${i} p[${k}]`));
    });
  });

  test('a TF.js graph model: signature names, v2 datatypes, infer', async () => {
    const port = graph.address.port!;
    const meta = json(await httpRequest(port, { path: '/v2/models/graph' }));
    assert.equal(meta.platform, 'tensorflowjs_graph');
    assert.deepEqual(meta.inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }]);
    const outs = meta.outputs as Array<{ name: string }>;
    assert.deepEqual(outs.map((o) => o.name).sort(), ['label', 'probabilities']);
    const r = await httpRequest(port, {
      method: 'POST',
      path: '/v2/models/graph/infer',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: ROW }], outputs: [{ name: 'label' }] }),
    });
    assert.equal(r.status, 200, r.body.toString());
    assert.deepEqual(json(r).outputs, [{ name: 'label', datatype: 'INT32', shape: [1], data: [0] }]);
  });
});

const ONNX_PREDICTOR_PY = `
  class ONNXPredictor:
      def __init__(self, onnx_client, config):
          self.client = onnx_client

      def predict(self, payload):
          return {"from": "python"}
`;
const PYTHON_PREDICTOR_PY = `
  class PythonPredictor:
      def __init__(self, config):
          pass

      def predict(self, payload):
          return {"from": "python"}
`;

describe('v2 with Python predictors', { skip: pythonHas('json') ? false : 'no Python interpreter (MYELIN_PYTHON) to run the bridge' }, () => {
  let onnxPy: PythonReplica;
  let plainPy: PythonReplica;
  before(async () => {
    onnxPy = await startPythonReplica({
      files: { 'predictor.py': ONNX_PREDICTOR_PY },
      spec: (p) => ({ name: 'iris-py', predictor: { type: 'onnx', path: p.path('predictor.py'), modelPath: IRIS_ONNX } }),
    });
    plainPy = await startPythonReplica({ files: { 'predictor.py': PYTHON_PREDICTOR_PY }, spec: () => ({ name: 'plain-py' }) });
  });
  after(async () => {
    for (const r of [onnxPy, plainPy]) {
      await r?.replica.close({ graceMs: 500 });
      r?.project.remove();
    }
  });

  test('an ONNXPredictor .py: the replica runs the model, Python is skipped', async () => {
    const port = onnxPy.target.port;
    const viaPython = await onnxPy.postJson({});
    assert.deepEqual(json(viaPython), { from: 'python' });
    const r = await httpRequest(port, {
      method: 'POST',
      path: '/v2/models/iris-py/infer',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: ROW }], outputs: [{ name: 'label' }] }),
    });
    assert.equal(r.status, 200, r.body.toString());
    assert.deepEqual(json(r).outputs, [{ name: 'label', datatype: 'INT64', shape: [1], data: [0] }]);
    const meta = json(await httpRequest(port, { path: '/v2/models/iris-py' }));
    assert.deepEqual(meta.inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }]);
    assert.equal((await httpRequest(port, { path: '/v2/models/iris-py/ready' })).status, 200);
  });

  test('a PythonPredictor: 501, its models live in Python', async () => {
    const r = await httpRequest(plainPy.target.port, { path: '/v2/models/plain-py' });
    assert.equal(r.status, 501);
    assert.match(String(json(r).error), /predictor\.type python\) has no model the Open Inference Protocol can run/);
  });
});
