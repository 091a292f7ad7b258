import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Container } from 'inversify';
import { pino, type Logger } from 'pino';
import { fsModule } from '../../../adapters/fs/fs-module.js';
import { TsxUserModuleImporter } from '../../../adapters/fs/tsx-user-module-importer.js';
import type { ApiSpec } from '../../../core/config/api-spec.js';
import { EngineError, HttpError, PredictorError } from '../../../core/errors.js';
import type { BackendPredictArgs, LoadedPredictor } from '../../../core/ports/predictor-backend.js';
import { PredictorBackendContribution } from '../../../core/ports/predictor-backend.js';
import { OnnxPredictorBackend, onnxIntraOpThreads } from '../../../plugins/predictor-onnx/onnx-predictor-backend.js';
import { predictorOnnxModule } from '../../../plugins/predictor-onnx/predictor-onnx-module.js';
import { apiSpecFixture, type ApiSpecOverrides } from '../../harness/api-spec-fixture.js';
import { addModel, int64Model, irisModel, softmax, writeOnnxModel } from '../../harness/model-builders.js';
import { storeModelProvider } from '../../harness/store-model-provider.js';

// Three classic iris samples (setosa, versicolor, virginica) and their logits computed by hand from
// IRIS_COEF · x + IRIS_INTERCEPT, e.g. setosa: -0.42·5.1 + 0.97·3.5 - 2.52·1.4 - 1.08·0.2 + 9.85 = 7.359.
const SAMPLES = [
  [5.1, 3.5, 1.4, 0.2],
  [7.0, 3.2, 4.7, 1.4],
  [6.3, 3.3, 6.0, 2.5],
];
const HAND_LOGITS = [
  [7.359, 3.341, -10.7],
  [-3.342, 2.623, 0.719],
  [-7.415, 0.913, 6.502],
];
// The same samples with a zero intercept (the "version 1" model below): all argmax to class 2.
const HAND_LOGITS_V1 = [
  [-2.491, 1.101, 1.39],
  [-13.192, 0.383, 12.809],
  [-17.265, -1.327, 18.592],
];

interface Captured {
  readonly log: Logger;
  readonly lines: Record<string, unknown>[];
}
function captureLog(): Captured {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

function args(payload: unknown, extra: Partial<BackendPredictArgs> = {}, log: Logger = pino({ level: 'silent' })): BackendPredictArgs {
  return { payload, query: {}, headers: {}, requestId: 'req-1', debug: false, log, ...extra };
}

function assertClose(got: unknown, want: number[][], tol = 1e-5): void {
  const g = got as number[][];
  assert.equal(g.length, want.length);
  g.forEach((row, i) => row.forEach((x, j) => assert.ok(Math.abs(x - want[i][j]) < tol, `[${i}][${j}]: want ${want[i][j]}, got ${x}`)));
}

async function assertHttp(p: Promise<unknown>, status: number, want: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof HttpError, `want HttpError, got ${String(err)}`);
    assert.equal(err.status, status);
    assert.match(err.message, want);
    return true;
  });
}

let dir: string;
const loaded: LoadedPredictor[] = [];
const backend = new OnnxPredictorBackend(new TsxUserModuleImporter(), storeModelProvider());

async function load(overrides: ApiSpecOverrides, log: Logger = pino({ level: 'silent' })): Promise<LoadedPredictor> {
  const p = await backend.load(apiSpecFixture({ projectDir: dir, ...overrides, predictor: { type: 'onnx', ...overrides.predictor } }), log);
  loaded.push(p);
  return p;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-onnx-'));
  await writeOnnxModel(join(dir, 'iris.onnx'), irisModel());
  await writeOnnxModel(join(dir, 'add', 'add.onnx'), addModel());
  await writeOnnxModel(join(dir, 'int64.onnx'), int64Model());
  // A versioned model: version 1 without intercept, version 2 with it.
  await writeOnnxModel(join(dir, 'versions', '1', 'iris.onnx'), irisModel({ intercept: [0, 0, 0] }));
  await writeOnnxModel(join(dir, 'versions', '2', 'iris.onnx'), irisModel());
  await writeOnnxModel(join(dir, 'two', 'a.onnx'), irisModel());
  await writeOnnxModel(join(dir, 'two', 'b.onnx'), irisModel());
  await mkdir(join(dir, 'empty'));
  await writeOnnxModel(join(dir, 'zoo', 'iris.onnx'), irisModel());
  await writeOnnxModel(join(dir, 'zoo', 'add', 'model.onnx'), addModel());
  await writeOnnxModel(join(dir, 'zoo', 'versioned', '1', 'm.onnx'), irisModel({ intercept: [0, 0, 0] }));
  await writeOnnxModel(join(dir, 'zoo', 'versioned', '2', 'm.onnx'), irisModel());
  await writeFile(join(dir, 'broken.onnx'), 'not a model');
});

after(async () => {
  await Promise.all(loaded.map((p) => p.close()));
  await rm(dir, { recursive: true, force: true });
});

describe('onnx backend, no predictor file: the payload goes to the model', () => {
  test('iris: labels and probabilities match the hand computation, batch of 3', async () => {
    const p = await load({ predictor: { modelPath: join(dir, 'iris.onnx') } });
    const out = (await p.predict(args(SAMPLES))) as { label: number[]; probabilities: number[][] };
    assert.deepEqual(out.label, [0, 1, 2]);
    assertClose(out.probabilities, HAND_LOGITS.map(softmax));
  });

  test('dynamic batch: 1 and 5 rows, { input: … } form', async () => {
    const p = await load({ predictor: { modelPath: join(dir, 'iris.onnx') } });
    for (const rows of [[SAMPLES[0]], [...SAMPLES, SAMPLES[0], SAMPLES[1]]]) {
      const out = (await p.predict(args({ input: rows }))) as { label: number[] };
      assert.equal(out.label.length, rows.length);
    }
  });

  test('multi-input model: { a, b }', async () => {
    const p = await load({ predictor: { modelPath: join(dir, 'add') } });
    const out = await p.predict(args({ a: [[1, 2, 3], [0.5, 0, -1]], b: [[10, 20, 30], [2, 2, 2]] }));
    assert.deepEqual(out, { sum: [[11, 22, 33], [2.5, 2, 1]], product: [[10, 40, 90], [1, 0, -2]] });
  });

  test('int64 input and outputs; values beyond 2^53 travel as strings', async () => {
    const p = await load({ predictor: { modelPath: join(dir, 'int64.onnx') } });
    assert.deepEqual(await p.predict(args({ ids: [[1, 2, 3], [-4, 0, 4]] })), { doubled: [[2, 4, 6], [-8, 0, 8]], total: [6, 0] });
    // (Only `doubled` is checked exactly here: onnxruntime's int64 ReduceSum rounds beyond 2^53.)
    const big = (await p.predict(args([['9007199254740993', 0, 0]]))) as { doubled: unknown };
    assert.deepEqual(big.doubled, [['18014398509481986', 0, 0]]);
  });

  test('bad input is a 400 naming the input, the expected and the got', async () => {
    const iris = await load({ predictor: { modelPath: join(dir, 'iris.onnx') } });
    const add = await load({ predictor: { modelPath: join(dir, 'add') } });
    const ids = await load({ predictor: { modelPath: join(dir, 'int64.onnx') } });
    const cases: { name: string; p: LoadedPredictor; payload: unknown; want: RegExp }[] = [
      { name: 'wrong shape', p: iris, payload: [[1, 2, 3]], want: /input "input": expected shape \[batch, 4\], got \[1, 3\]/ },
      { name: 'rank too low', p: iris, payload: [5.1, 3.5, 1.4, 0.2], want: /input "input": expected shape \[batch, 4\], got \[4\]/ },
      { name: 'wrong dtype (string)', p: iris, payload: [[1, 2, 'three', 4]], want: /input "input": expected float32 values, got string "three" at \[0\]\[2\]/ },
      { name: 'wrong dtype (fraction for int64)', p: ids, payload: [[1, 2.5, 3]], want: /input "ids": expected int64 values, got number 2.5 at \[0\]\[1\]/ },
      { name: 'missing input', p: add, payload: { a: [[1, 2, 3]] }, want: /missing input "b"/ },
      { name: 'text payload', p: iris, payload: 'hello', want: /send the model input as JSON/ },
      { name: 'raw bytes payload', p: iris, payload: new Uint8Array([1, 2]), want: /got raw bytes/ },
    ];
    for (const c of cases) await assertHttp(c.p.predict(args(c.payload)), 400, c.want);
    // The replica is still fine afterwards.
    assert.deepEqual(((await iris.predict(args([SAMPLES[2]]))) as { label: number[] }).label, [2]);
  });

  test('several models: ?model= picks one; none given is the model_name error', async () => {
    const p = await load({
      predictor: { models: { paths: [{ name: 'iris', path: join(dir, 'iris.onnx') }, { name: 'add', path: join(dir, 'add') }] } },
    });
    await assertHttp(p.predict(args([SAMPLES[0]])), 400, /^model_name was not specified; .*choose one of: iris, add$/);
    await assertHttp(p.predict(args([SAMPLES[0]], { query: { model: 'nope' } })), 404, /model "nope" is not served/);
    const out = (await p.predict(args([SAMPLES[0]], { query: { model: 'iris' } }))) as { label: number[] };
    assert.deepEqual(out.label, [0]);
    assert.deepEqual(await p.predict(args({ a: [[1, 1, 1]], b: [[1, 1, 1]] }, { query: { model: 'add' } })), { sum: [[2, 2, 2]], product: [[1, 1, 1]] });
  });

  test('versions: integer sub-folders, latest is the highest, ?version= picks one', async () => {
    const v = await load({ predictor: { models: { paths: [{ name: 'iris', path: join(dir, 'versions') }] } } });
    const latest = (await v.predict(args(SAMPLES, { query: { model: 'iris' } }))) as { label: number[]; probabilities: number[][] };
    assert.deepEqual(latest.label, [0, 1, 2]);
    const v1 = (await v.predict(args(SAMPLES, { query: { model: 'iris', version: '1' } }))) as { label: number[]; probabilities: number[][] };
    assert.deepEqual(v1.label, [2, 2, 2]);
    assertClose(v1.probabilities, HAND_LOGITS_V1.map(softmax));
    await assertHttp(v.predict(args(SAMPLES, { query: { model: 'iris', version: '7' } })), 404, /model "iris" has no version 7 \(versions: 1, 2\)/);
    // As in Cortex, models.paths needs a model name even when it lists one model.
    await assertHttp(v.predict(args(SAMPLES)), 400, /model_name was not specified; this API serves several models, choose one of: iris/);
  });

  test('models.dir: each sub-folder or .onnx file is a model named after it', async () => {
    const p = await load({ predictor: { models: { dir: join(dir, 'zoo') } } });
    assert.deepEqual((p.describe() as { models: { name: string; versions: string[] }[] }).models.map((m) => [m.name, m.versions]), [
      ['add', ['1']],
      ['iris', ['1']],
      ['versioned', ['1', '2']],
    ]);
    const v1 = (await p.predict(args([SAMPLES[0]], { query: { model: 'versioned', version: '1' } }))) as { label: number[] };
    assert.deepEqual(v1.label, [2]);
    assert.deepEqual(await p.predict(args({ a: [[1, 2, 3]], b: [[1, 1, 1]] }, { query: { model: 'add' } })), { sum: [[2, 3, 4]], product: [[1, 2, 3]] });
  });

  test('describe() shows the runtime, models, versions and signatures', async () => {
    const p = await load({ predictor: { models: { paths: [{ name: 'iris', path: join(dir, 'versions') }] } } });
    const described = p.describe() as { models: Array<{ timestamps: number[] }> };
    // Cortex's timestamps: the store's last modification of each version, seconds since the epoch.
    assert.equal(described.models[0].timestamps.length, 2);
    assert.ok(described.models[0].timestamps.every((t) => Math.abs(t - Date.now() / 1000) < 3600));
    assert.deepEqual(p.describe(), {
      type: 'onnx',
      backend: 'onnxruntime-node 1.30.0',
      predictor: 'none: the JSON payload goes to the model',
      models: [
        {
          name: 'iris',
          versions: ['1', '2'],
          timestamps: described.models[0].timestamps,
          status: { 1: 'loaded', 2: 'loaded' },
          inputs: [{ name: 'input', dtype: 'float32', shape: ['batch', 4] }],
          outputs: [
            { name: 'label', dtype: 'int64', shape: ['batch'] },
            { name: 'probabilities', dtype: 'float32', shape: ['batch', 3] },
          ],
        },
      ],
    });
  });

  test('debug logs the inference output under the request id (the replica logs the raw sample)', async () => {
    const cap = captureLog();
    const p = await load({ predictor: { modelPath: join(dir, 'iris.onnx') } });
    await p.predict(args([SAMPLES[0]], { debug: true }, cap.log.child({ requestId: 'r-42' })));
    const stages = cap.lines.filter((l) => l.msg === 'debug stage');
    assert.deepEqual(stages.map((l) => [l.requestId, l.stage]), [['r-42', 'inference']]);
    assert.deepEqual((stages[0].value as { label: number[] }).label, [0]);
  });
});

describe('onnx backend, load errors are coded EngineErrors naming the model', () => {
  const cases: { name: string; overrides: () => ApiSpecOverrides; code: string; want: RegExp }[] = [
    { name: 'no model', overrides: () => ({ predictor: {} }), code: 'ENG_PREDICTOR_NO_MODEL', want: /needs a model/ },
    { name: 'missing file', overrides: () => ({ predictor: { modelPath: join(dir, 'nope.onnx') } }), code: 'ENG_MODEL_NOT_FOUND', want: /nope\.onnx: the model was not found/ },
    { name: 'folder with two .onnx files', overrides: () => ({ predictor: { modelPath: join(dir, 'two') } }), code: 'ENG_MODEL_LAYOUT', want: /two: the model is not a valid onnx model: more than one \*\.onnx file \(a\.onnx, b\.onnx\)/ },
    { name: 'empty folder', overrides: () => ({ predictor: { modelPath: join(dir, 'empty') } }), code: 'ENG_MODEL_NOT_FOUND', want: /empty: the model was not found/ },
    { name: 'not an onnx file', overrides: () => ({ predictor: { modelPath: join(dir, 'broken.onnx') } }), code: 'ENG_PREDICTOR_MODEL_INVALID', want: /onnxruntime cannot load .*broken\.onnx/ },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      await assert.rejects(load(c.overrides()), (err: unknown) => err instanceof EngineError && err.code === c.code && c.want.test(err.message));
    });
  }

  test('intra-op threads: default 1, from predictor.env, bad values refused', () => {
    assert.equal(onnxIntraOpThreads(apiSpecFixture(), {}), 1);
    assert.equal(onnxIntraOpThreads(apiSpecFixture({ predictor: { env: { MYELIN_ONNX_INTRA_OP_THREADS: '2' } } }), {}), 2);
    assert.throws(() => onnxIntraOpThreads(apiSpecFixture(), { MYELIN_ONNX_INTRA_OP_THREADS: 'many' }), PredictorError);
  });
});

describe('onnx backend with an ONNXPredictor file', () => {
  test('the class gets onnxClient and config; typed arrays and model metadata work', async () => {
    const file = join(dir, 'predictor.ts');
    await writeFile(
      file,
      `const labels = ['setosa', 'versicolor', 'virginica'];
export class ONNXPredictor {
  constructor({ onnxClient, config }) { this.client = onnxClient; this.config = config; }
  async predict({ payload, query }) {
    const x = new Float32Array([payload.sepal_length, payload.sepal_width, payload.petal_length, payload.petal_width]);
    const out = await this.client.predict(x, undefined, query.version);
    const meta = this.client.metadata();
    return { label: labels[out.label[0]], prefix: this.config.prefix, input: meta.inputs[0].name, probabilities: out.probabilities[0] };
  }
}
`,
    );
    const p = await load({ predictor: { path: file, modelPath: join(dir, 'iris.onnx'), config: { prefix: 'iris' } } });
    const out = (await p.predict(args({ sepal_length: 7.0, sepal_width: 3.2, petal_length: 4.7, petal_width: 1.4 }))) as Record<string, unknown>;
    assert.equal(out.label, 'versicolor');
    assert.equal(out.prefix, 'iris');
    assert.equal(out.input, 'input');
    assertClose([out.probabilities as number[]], [softmax(HAND_LOGITS[1])]);
    assert.deepEqual((p.describe() as { predictor: unknown }).predictor, { path: file, class: 'ONNXPredictor' });
  });

  test('a default-exported class works; an HttpError from predict keeps its status', async () => {
    const file = join(dir, 'default-predictor.mjs');
    await writeFile(
      file,
      `export default class {
  constructor({ onnxClient }) { this.client = onnxClient; }
  async predict({ payload }) { return this.client.predict(payload); }
}
`,
    );
    const p = await load({ predictor: { path: file, modelPath: join(dir, 'iris.onnx') } });
    assert.deepEqual(((await p.predict(args([SAMPLES[0]]))) as { label: number[] }).label, [0]);
    await assertHttp(p.predict(args([[1, 2]])), 400, /input "input": expected shape \[batch, 4\], got \[1, 2\]/);
  });

  const bad: { name: string; source: string; want: RegExp }[] = [
    { name: 'no ONNXPredictor export', source: 'export class Predictor { predict() {} }', want: /expected an exported class named ONNXPredictor .*found exports: Predictor/ },
    { name: 'no predict method', source: 'export class ONNXPredictor {}', want: /missing a predict/ },
    { name: 'constructor throws', source: "export class ONNXPredictor { constructor() { throw new Error('no config') } predict() {} }", want: /constructor failed: no config/ },
  ];
  for (const c of bad) {
    test(`load error: ${c.name}`, async () => {
      const file = join(dir, `bad-${c.name.replace(/\W+/g, '-')}.ts`);
      await writeFile(file, c.source);
      await assert.rejects(load({ predictor: { path: file, modelPath: join(dir, 'iris.onnx') } }), (err: unknown) => err instanceof PredictorError && c.want.test(err.message));
    });
  }
});

describe('legacy request_handler around the onnx model', () => {
  test('pre_inference → model → post_inference, with the debug stages after the raw sample under the request id', async () => {
    const handler = join(dir, 'handler.ts');
    await writeFile(
      handler,
      `const labels = ['setosa', 'versicolor', 'virginica'];
export function pre_inference(sample: any, metadata: any) {
  return { [metadata.inputs[0].name]: [[sample.sepal_length, sample.sepal_width, sample.petal_length, sample.petal_width]] };
}
export async function post_inference(prediction: any, metadata: any) {
  return { class_label: labels[prediction.label[0]], class_index: prediction.label[0], model: metadata.name };
}
`,
    );
    const cap = captureLog();
    const p = await load({ dialect: 'legacy', predictor: { requestHandler: handler, modelPath: join(dir, 'iris.onnx') } });
    const sample = { sepal_length: 6.3, sepal_width: 3.3, petal_length: 6.0, petal_width: 2.5 };
    const out = await p.predict(args(sample, { debug: true }, cap.log.child({ requestId: 'r-7' })));
    assert.deepEqual(out, { class_label: 'virginica', class_index: 2, model: '_cortex_default' });
    const stages = cap.lines.filter((l) => l.msg === 'debug stage');
    assert.deepEqual(stages.map((l) => [l.requestId, l.stage]), [
      ['r-7', 'pre_inference'],
      ['r-7', 'inference'],
      ['r-7', 'post_inference'],
    ]);
    assert.deepEqual(stages[0].value, { input: [[6.3, 3.3, 6.0, 2.5]] });
    assert.deepEqual((stages[1].value as { label: number[] }).label, [2]);
    assert.deepEqual(stages[2].value, out);
    // Without debug, nothing is logged per request.
    const before = cap.lines.length;
    await p.predict(args(sample, {}, cap.log.child({ requestId: 'r-8' })));
    assert.equal(cap.lines.length, before);
    assert.deepEqual((p.describe() as { requestHandler: unknown }).requestHandler, { path: handler, preInference: true, postInference: true });
  });

  test('a handler with only post_inference gets the payload straight to the model', async () => {
    const handler = join(dir, 'post-only.mjs');
    await writeFile(handler, 'export const post_inference = (prediction) => prediction.label;\n');
    const p = await load({ dialect: 'legacy', predictor: { requestHandler: handler, modelPath: join(dir, 'iris.onnx') } });
    assert.deepEqual(await p.predict(args(SAMPLES)), [0, 1, 2]);
  });

  test('a handler exporting neither function is a load error', async () => {
    const handler = join(dir, 'empty-handler.mjs');
    await writeFile(handler, 'export const x = 1;\n');
    await assert.rejects(load({ predictor: { requestHandler: handler, modelPath: join(dir, 'iris.onnx') } }), /exports pre_inference\(sample, metadata\) and\/or post_inference/);
  });
});

describe('onnx backend registration and threads', () => {
  test('the ContainerModule binds a PredictorBackendContribution of kind onnx', async () => {
    const c = new Container();
    await c.load(predictorOnnxModule, fsModule);
    const all = c.getAll<PredictorBackendContribution>(PredictorBackendContribution);
    assert.deepEqual(all.map((b) => b.kind), ['onnx']);
  });

  test('concurrent predictions on one predictor all get their own answer', async () => {
    const p = await load({ predictor: { modelPath: join(dir, 'iris.onnx') } });
    const outs = await Promise.all(Array.from({ length: 48 }, (_, i) => p.predict(args([SAMPLES[i % 3]]))));
    assert.deepEqual(outs.map((o) => (o as { label: number[] }).label[0]), Array.from({ length: 48 }, (_, i) => i % 3));
  });

  test('loads and predicts inside a worker thread while the main thread also predicts', async () => {
    const main = await load({ predictor: { modelPath: join(dir, 'iris.onnx') } });
    const specJson = JSON.stringify(apiSpecFixture({ projectDir: dir, predictor: { type: 'onnx', modelPath: join(dir, 'iris.onnx') } }));
    const backendUrl = new URL('../../../plugins/predictor-onnx/onnx-predictor-backend.ts', import.meta.url).href;
    const code = `
      const { parentPort, workerData } = await import('node:worker_threads');
      // As the replica's worker entry does: register tsx in this thread so .ts files load.
      (await import(workerData.tsxUrl)).register();
      const { pino } = await import(workerData.pinoUrl);
      const { storeModelProvider } = await import(workerData.providerUrl);
      const { OnnxPredictorBackend } = await import(workerData.backendUrl);
      const { TsxUserModuleImporter } = await import(workerData.importerUrl);
      const log = pino({ level: 'silent' });
      const p = await new OnnxPredictorBackend(new TsxUserModuleImporter(), storeModelProvider()).load(JSON.parse(workerData.specJson), log);
      const out = await p.predict({ payload: workerData.samples, query: {}, headers: {}, requestId: 'w', debug: false, log });
      await p.close();
      parentPort.postMessage(out);
    `;
    const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), {
      workerData: { backendUrl, importerUrl: new URL('../../../adapters/fs/tsx-user-module-importer.ts', import.meta.url).href, providerUrl: new URL('../../harness/store-model-provider.ts', import.meta.url).href, tsxUrl: import.meta.resolve('tsx/esm/api'), pinoUrl: import.meta.resolve('pino'), specJson, samples: SAMPLES },
    });
    const fromWorker = new Promise<unknown>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before answering`)));
    });
    const [inWorker, inMain] = await Promise.all([fromWorker, main.predict(args(SAMPLES))]);
    await worker.terminate();
    assert.deepEqual((inWorker as { label: number[] }).label, [0, 1, 2]);
    assert.deepEqual(inWorker, inMain);
  });
});
