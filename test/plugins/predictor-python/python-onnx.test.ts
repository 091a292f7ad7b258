// Python predictors on real models run by the replica's runtimes (onnxruntime-node, TF.js on wasm),
// tensors crossing the bridge as raw bytes: a `.py` ONNXPredictor on the repository's iris model
// (Cortex's input reshaping, outputs as a list of numpy arrays, shape errors as 400s naming the input),
// several models by name, a legacy `kind: api` handler.py (pre_inference/post_inference with NodeArg
// metadata, and its ?debug=true stages), and a TensorFlowPredictor getting a dict by output name.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { IRIS_LABELS, addModel, irisLogits, softmax, writeOnnxModel } from '../../harness/model-builders.js';
import { waitFor } from '../../harness/http-client.js';
import { writeTfjsGraphIris } from '../../harness/tfjs-model-builders.js';
import { IRIS_ONNX, startPythonReplica, type PythonReplica } from './python-test-kit.js';

const SETOSA = [5.1, 3.5, 1.4, 0.2];
const VIRGINICA = [6.3, 3.3, 6.0, 2.5];

/** What the iris model should answer for one row: label index by argmax of the logits, softmax probabilities. */
function irisWant(row: readonly number[]): { label: string; probabilities: number[] } {
  const logits = irisLogits(row);
  return { label: IRIS_LABELS[logits.indexOf(Math.max(...logits))], probabilities: softmax(logits) };
}

function assertClose(got: readonly number[], want: readonly number[], what: string): void {
  assert.equal(got.length, want.length, what);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) < 1e-5, `${what}[${i}]: want ${want[i]}, got ${g}`));
}

const ONNX_PREDICTOR = `
  import numpy as np

  FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


  def describe(outputs):
      return [{"type": type(o).__name__, "dtype": str(o.dtype), "shape": list(o.shape)} for o in outputs]


  class ONNXPredictor:
      def __init__(self, onnx_client, config):
          self.client = onnx_client
          self.labels = config["labels"]

      def predict(self, payload, query_params):
          mode = query_params.get("mode", "flat")
          if mode == "flat":  # a flat list of 4 for a [batch, 4] input
              out = self.client.predict([payload[f] for f in FEATURES])
          elif mode == "numpy":  # float64 numpy: cast to the model's float32
              out = self.client.predict(np.array(payload, dtype=np.float64))
          elif mode == "dict":
              out = self.client.predict({"input": payload})
          else:
              out = self.client.predict(payload, model_version=query_params.get("version", "latest"))
          return {
              "outputs": describe(out),
              "labels": [self.labels[int(i)] for i in out[0]],
              "probabilities": out[1].tolist(),
              "signature": [[a.name, a.type, a.shape] for a in self.client.input_signature()],
          }
`;

describe('ONNXPredictor (.py) on the iris model', () => {
  let t: PythonReplica;
  before(async () => {
    t = await startPythonReplica({
      files: { 'predictor.py': ONNX_PREDICTOR },
      spec: (p) => ({ predictor: { type: 'onnx', path: p.path('predictor.py'), modelPath: IRIS_ONNX, config: { labels: [...IRIS_LABELS] }, threadsPerProcess: 4 } }),
    });
  });
  after(() => t[Symbol.asyncDispose]());

  test('concurrent requests on four threads: each model call gets its own answer', async () => {
    const rows = Array.from({ length: 24 }, (_, i) => [4.3 + (i % 8) * 0.4, 2 + (i % 5) * 0.4, 1 + (i % 6), 0.1 + (i % 4) * 0.8]);
    const got = await Promise.all(rows.map((row) => t.postJson([row], '?mode=raw')));
    got.forEach((r, i) => {
      assert.equal(r.status, 200, r.text);
      const body = r.json() as { labels: string[]; probabilities: number[][] };
      assert.deepEqual(body.labels, [irisWant(rows[i]).label], `row ${i}`);
      assertClose(body.probabilities[0], irisWant(rows[i]).probabilities, `row ${i}`);
    });
  });

  const good: { name: string; mode: string; body: unknown; rows: number[][] }[] = [
    { name: 'a flat list for a [batch, 4] input is reshaped to [1, 4]', mode: 'flat', body: { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 }, rows: [SETOSA] },
    { name: 'a batch of two rows keeps its shape', mode: 'raw', body: [SETOSA, VIRGINICA], rows: [SETOSA, VIRGINICA] },
    { name: 'a float64 numpy array is cast to float32', mode: 'numpy', body: [VIRGINICA], rows: [VIRGINICA] },
    { name: 'a {name: value} dict for the one input', mode: 'dict', body: SETOSA, rows: [SETOSA] },
    { name: 'model_version="1" picks the only version', mode: 'raw&version=1', body: [VIRGINICA], rows: [VIRGINICA] },
  ];
  for (const c of good) {
    test(`${c.name}; outputs are a list of numpy arrays`, async () => {
      const r = await t.postJson(c.body, `?mode=${c.mode}`);
      assert.equal(r.status, 200, r.text);
      const got = r.json() as { outputs: unknown; labels: string[]; probabilities: number[][]; signature: unknown };
      const n = c.rows.length;
      assert.deepEqual(got.outputs, [
        { type: 'ndarray', dtype: 'int64', shape: [n] },
        { type: 'ndarray', dtype: 'float32', shape: [n, 3] },
      ]);
      assert.deepEqual(got.labels, c.rows.map((row) => irisWant(row).label));
      c.rows.forEach((row, i) => assertClose(got.probabilities[i], irisWant(row).probabilities, `probabilities of row ${i}`));
      assert.deepEqual(got.signature, [['input', 'tensor(float)', ['batch', 4]]]);
    });
  }

  const bad: { name: string; body: string; status: number; error: RegExp }[] = [
    { name: 'a flat list of 3', body: '[1, 2, 3]', status: 400, error: /^failed to convert to numpy array for model '_cortex_default': key 'input': cannot reshape array of size 3/ },
    { name: 'a row of 3', body: '[[1, 2, 3]]', status: 400, error: /^input "input": expected shape \[batch, 4\], got \[1, 3\]$/ },
    { name: 'a string for a float', body: '[["x", 1, 2, 3]]', status: 400, error: /^failed to convert to numpy array for model '_cortex_default': key 'input': could not convert string to float: 'x'$/ },
    { name: 'a dict without the input', body: '{"features": [1, 2, 3, 4]}', status: 400, error: /^missing key 'input' for model '_cortex_default'$/ },
    { name: 'a version that does not exist', body: '[[1, 2, 3, 4]]&version=3', status: 404, error: /^the model has no version 3 \(versions: 1\)$/ },
  ];
  for (const c of bad) {
    test(`${c.name} → ${c.status} naming the problem`, async () => {
      const [body, version] = c.body.split('&');
      const r = await t.post(`?mode=raw${version ? `&${version}` : ''}`, body);
      assert.equal(r.status, c.status, r.text);
      assert.match((r.json() as { error: string }).error, c.error);
    });
  }

  test('GET / shows the class, the runtime and the model signature; the replica stays ready', async () => {
    const meta = await t.metadata();
    assert.deepEqual(meta.predictor, { path: t.project.path('predictor.py'), class: 'ONNXPredictor' });
    assert.match(String(meta.runtime), /^onnxruntime-node \d+\.\d+\.\d+/);
    assert.match(JSON.stringify(meta.models), /"name":"input","dtype":"float32","shape":\["batch",4\]/);
    assert.equal(t.replica.state(), 'ready');
  });
});

describe('ONNXPredictor (.py) with several models, picked by model_name', () => {
  let t: PythonReplica;
  before(async () => {
    t = await startPythonReplica({
      files: {
        'predictor.py': `
          class ONNXPredictor:
              def __init__(self, config, onnx_client):
                  self.client = onnx_client

              def predict(self, payload, query_params):
                  name = query_params.get("model")
                  out = self.client.predict(payload, name) if name else self.client.predict(payload)
                  return [o.tolist() for o in out]
        `,
      },
      prepare: (p) => writeOnnxModel(p.path('add.onnx'), addModel()),
      spec: (p) => ({ predictor: { type: 'onnx', path: p.path('predictor.py'), models: { paths: [{ name: 'iris', path: IRIS_ONNX }, { name: 'add', path: p.path('add.onnx') }] } } }),
    });
  });
  after(() => t[Symbol.asyncDispose]());

  test('named inputs as a dict; a missing model name or input is a 400', async () => {
    const sum = await t.postJson({ a: [[1, 2, 3]], b: [[10, 20, 30]] }, '?model=add');
    assert.deepEqual([sum.status, sum.json()], [200, [[[11, 22, 33]], [[10, 40, 90]]]]);
    const flat = await t.postJson({ a: [1, 2, 3], b: [1, 1, 1] }, '?model=add');
    assert.deepEqual(flat.json(), [[[2, 3, 4]], [[1, 2, 3]]], 'flat lists reshaped to [1, 3]');
    const iris = await t.postJson(SETOSA, '?model=iris');
    assert.deepEqual((iris.json() as unknown[])[0], [0]);
    const cases: { query: string; body: unknown; status: number; error: string }[] = [
      { query: '', body: SETOSA, status: 400, error: "model_name was not specified, choose one of the following: ['iris', 'add']" },
      { query: '?model=nope', body: SETOSA, status: 404, error: "'nope' model wasn't found in the list of available models" },
      { query: '?model=add', body: [1, 2, 3], status: 400, error: `expected model_input to be a dictionary with keys '"a", "b"' for model 'add'` },
      { query: '?model=add', body: { a: [1, 2, 3] }, status: 400, error: "missing key 'b' for model 'add'" },
    ];
    for (const c of cases) {
      const r = await t.postJson(c.body, c.query);
      assert.deepEqual([r.status, r.json()], [c.status, { error: c.error }], c.query);
    }
  });
});

describe('ONNXPredictor (.py) with model caching: the model loads on its first request', () => {
  let t: PythonReplica;
  before(async () => {
    t = await startPythonReplica({
      files: { 'predictor.py': ONNX_PREDICTOR },
      spec: (p) => ({
        predictor: { type: 'onnx', path: p.path('predictor.py'), models: { path: IRIS_ONNX, cacheSize: 1, diskCacheSize: 1 }, config: { labels: [...IRIS_LABELS] } },
      }),
    });
  });
  after(() => t[Symbol.asyncDispose]());

  test('onnx_client shapes the first input with the signature the replica loads for it', async () => {
    const r = await t.postJson({ sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 });
    assert.equal(r.status, 200, r.text);
    const out = r.json() as { labels: string[]; signature: unknown[] };
    assert.deepEqual(out.labels, ['setosa']);
    assert.deepEqual(out.signature, [['input', 'tensor(float)', ['batch', 4]]]);
  });
});

describe('legacy handler.py (kind: api): pre_inference and post_inference around the ONNX model', () => {
  let t: PythonReplica;
  before(async () => {
    t = await startPythonReplica({
      files: {
        'handler.py': `
          LABELS = ["setosa", "versicolor", "virginica"]
          SEEN = {}


          def pre_inference(sample, metadata):
              SEEN["inputs"] = [[m.name, m.type, m.shape] for m in metadata]
              return {metadata[0].name: [sample["sepal_length"], sample["sepal_width"], sample["petal_length"], sample["petal_width"]]}


          def post_inference(prediction, metadata):
              outputs = [[m.name, m.type, m.shape] for m in metadata]
              index = int(prediction[0][0])
              return {
                  "class_label": LABELS[index],
                  "probabilities": prediction[1][0].tolist(),
                  "prediction": [type(p).__name__ for p in prediction],
                  "inputs": SEEN["inputs"],
                  "outputs": outputs,
              }
        `,
      },
      spec: (p) => ({
        dialect: 'legacy',
        monitoring: { modelType: 'classification', key: 'class_label' },
        predictor: { type: 'onnx', path: undefined, requestHandler: p.path('handler.py'), modelPath: IRIS_ONNX },
      }),
    });
  });
  after(() => t[Symbol.asyncDispose]());

  const sample = { sepal_length: 6.3, sepal_width: 3.3, petal_length: 6.0, petal_width: 2.5 };

  test('the handler gets NodeArg metadata (name, type, shape) and the list of outputs', async () => {
    const r = await t.postJson(sample);
    assert.equal(r.status, 200, r.text);
    const got = r.json() as Record<string, unknown>;
    assert.equal(got.class_label, irisWant(VIRGINICA).label);
    assertClose(got.probabilities as number[], irisWant(VIRGINICA).probabilities, 'probabilities');
    assert.deepEqual(got.prediction, ['ndarray', 'ndarray']);
    assert.deepEqual(got.inputs, [['input', 'tensor(float)', ['batch', 4]]]);
    assert.deepEqual(got.outputs, [
      ['label', 'tensor(int64)', ['batch']],
      ['probabilities', 'tensor(float)', ['batch', 3]],
    ]);
    assert.deepEqual((await t.metadata()).predictor, { requestHandler: t.project.path('handler.py') });
  });

  test('?debug=true logs raw sample, pre_inference, inference and post_inference under the request id', async () => {
    const r = await t.postJson(sample, '?debug=true');
    assert.equal(r.status, 200);
    const stages = t.linesOf(String(r.headers['x-request-id'])).filter((l) => l.msg === 'debug stage');
    assert.deepEqual(
      stages.map((l) => l.stage),
      ['raw sample', 'pre_inference', 'inference', 'post_inference'],
    );
    const [raw, pre, inference, post] = stages.map((l) => l.value as never);
    assert.deepEqual(raw, sample);
    assert.deepEqual(pre, { input: [6.3, 3.3, 6.0, 2.5] });
    assert.deepEqual((inference as unknown[])[0], [2], 'the outputs as lists');
    assert.equal((post as { class_label: string }).class_label, 'virginica');
  });

  test('a request without ?debug logs no stages', async () => {
    const r = await t.postJson(sample);
    assert.deepEqual(t.linesOf(String(r.headers['x-request-id'])).filter((l) => l.msg === 'debug stage'), []);
  });

  test('a sample the handler cannot read is a 500 with the traceback in the log', async () => {
    const r = await t.postJson({ nope: 1 });
    assert.equal(r.status, 500);
    const logged = t.linesOf(String(r.headers['x-request-id'])).find((l) => l.level === 50);
    assert.match(String((logged?.err as { stack?: string })?.stack), /handler\.py", line \d+, in pre_inference[\s\S]*KeyError: 'sepal_length'/);
  });

  test('monitoring counts the class_label of each prediction', async () => {
    const from = t.transport.published.length;
    // Setosa here, virginica everywhere else in this block: only these two requests count.
    const setosa = { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 };
    for (let i = 0; i < 2; i++) assert.equal((await t.postJson(setosa)).status, 200);
    const total = (): number =>
      t.transport.published.slice(from).reduce((n, s) => n + (s.monitoring?.modelType === 'classification' ? (s.monitoring.classes.setosa ?? 0) : 0), 0);
    await waitFor('both setosa predictions counted in samples', () => total() >= 2, 20_000);
    assert.equal(total(), 2);
  });
});

describe('TensorFlowPredictor (.py) on a TF.js graph model (wasm): outputs by name', () => {
  let t: PythonReplica;
  before(async () => {
    t = await startPythonReplica({
      files: {
        'predictor.py': `
          class TensorFlowPredictor:
              def __init__(self, tensorflow_client, config):
                  self.client = tensorflow_client

              def predict(self, payload):
                  out = self.client.predict(payload)
                  return {name: {"dtype": str(v.dtype), "shape": list(v.shape), "value": v.tolist()} for name, v in sorted(out.items())}
        `,
      },
      prepare: (p) => writeTfjsGraphIris(p.path('graph')),
      spec: (p) => ({ predictor: { type: 'tensorflow', path: p.path('predictor.py'), modelPath: p.path('graph'), env: { MYELIN_TFJS_RUNTIME: 'wasm' } } }),
    });
  });
  after(() => t[Symbol.asyncDispose]());

  test('a dict of numpy arrays by output name; a batch of two for a [-1, 4] input', async () => {
    const r = await t.postJson({ input: [SETOSA, VIRGINICA] });
    assert.equal(r.status, 200, r.text);
    const got = r.json() as Record<string, { dtype: string; shape: number[]; value: unknown }>;
    assert.deepEqual(Object.keys(got), ['label', 'probabilities']);
    assert.deepEqual([got.label.dtype, got.label.shape, got.label.value], ['int32', [2], [0, 2]]);
    assert.deepEqual([got.probabilities.dtype, got.probabilities.shape], ['float32', [2, 3]]);
    assertClose((got.probabilities.value as number[][])[1], irisWant(VIRGINICA).probabilities, 'probabilities');
  });

  test('a flat list is reshaped to [1, 4]; a row of 2 is a 400 naming the input', async () => {
    const flat = await t.postJson(SETOSA);
    assert.deepEqual((flat.json() as Record<string, { value: unknown }>).label.value, [0]);
    const bad = await t.postJson([[5.1, 3.5]]);
    assert.deepEqual([bad.status, bad.json()], [400, { error: 'input "input": expected shape [-1, 4], got [1, 2]' }]);
  });
});
