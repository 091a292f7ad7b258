import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Container } from 'inversify';
import { pino, type Logger } from 'pino';
import { fsModule } from '../../../adapters/fs/fs-module.js';
import { NodeModelFs } from '../../../adapters/fs/node-model-fs.js';
import { TsxUserModuleImporter } from '../../../adapters/fs/tsx-user-module-importer.js';
import { EngineError, HttpError, PredictorError } from '../../../core/errors.js';
import type { BackendPredictArgs, LoadedPredictor } from '../../../core/ports/predictor-backend.js';
import { PredictorBackendContribution } from '../../../core/ports/predictor-backend.js';
import { predictorTensorflowModule } from '../../../plugins/predictor-tensorflow/predictor-tensorflow-module.js';
import { TensorFlowPredictorBackend } from '../../../plugins/predictor-tensorflow/tensorflow-predictor-backend.js';
import { NATIVE_TF_PACKAGES } from '../../../plugins/predictor-tensorflow/tfjs-runtime.js';
import { apiSpecFixture, type ApiSpecOverrides } from '../../harness/api-spec-fixture.js';
import { softmax } from '../../harness/model-builders.js';
import { writeTfjsGraphAdd, writeTfjsGraphIris, writeTfjsLayersIris } from '../../harness/tfjs-model-builders.js';
import { storeModelProvider } from '../../harness/store-model-provider.js';

// Iris samples and their logits computed by hand from IRIS_COEF · x + IRIS_INTERCEPT
// (setosa: -0.42·5.1 + 0.97·3.5 - 2.52·1.4 - 1.08·0.2 + 9.85 = 7.359).
const SAMPLES = [
  [5.1, 3.5, 1.4, 0.2],
  [7.0, 3.2, 4.7, 1.4],
  [6.3, 3.3, 6.0, 2.5],
];
const HAND_PROBABILITIES = [
  [7.359, 3.341, -10.7],
  [-3.342, 2.623, 0.719],
  [-7.415, 0.913, 6.502],
].map(softmax);

/** Whether a package can be resolved from here (the native TensorFlow bindings usually cannot). */
function installed(name: string): boolean {
  try {
    import.meta.resolve(name);
    return true;
  } catch {
    return false;
  }
}
const nativeInstalled = NATIVE_TF_PACKAGES.filter(installed);

function captureLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) }) };
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
const backend = new TensorFlowPredictorBackend(new TsxUserModuleImporter(), new NodeModelFs(), storeModelProvider());
/** Forces the pure-JS wasm runtime, so the wasm path is tested even where tfjs-node is installed. */
const WASM = { MYELIN_TFJS_RUNTIME: 'wasm' };

async function load(overrides: ApiSpecOverrides, log: Logger = pino({ level: 'silent' })): Promise<LoadedPredictor> {
  const p = await backend.load(
    apiSpecFixture({ projectDir: dir, ...overrides, predictor: { type: 'tensorflow', env: WASM, ...overrides.predictor } }),
    log,
  );
  loaded.push(p);
  return p;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-tf-'));
  await writeTfjsLayersIris(join(dir, 'layers'));
  await writeTfjsGraphIris(join(dir, 'graph'));
  await writeTfjsGraphAdd(join(dir, 'add'));
  await writeTfjsGraphIris(join(dir, 'versions', '1'));
  await writeTfjsLayersIris(join(dir, 'versions', '2'));
  await mkdir(join(dir, 'saved', 'variables'), { recursive: true });
  await writeFile(join(dir, 'saved', 'saved_model.pb'), '');
  await writeFile(join(dir, 'saved', 'variables', 'variables.index'), '');
  await mkdir(join(dir, 'nothing'));
  await writeFile(join(dir, 'nothing', 'README.md'), 'not a model');
});

after(async () => {
  await Promise.all(loaded.map((p) => p.close()));
  await rm(dir, { recursive: true, force: true });
});

describe('tensorflow backend runtime', () => {
  test('auto: the native bindings when importable, else @tensorflow/tfjs on wasm with a fallback log line', async () => {
    const cap = captureLog();
    const p = await load({ predictor: { modelPath: join(dir, 'layers'), env: {} } }, cap.log);
    const runtime = (p.describe() as { backend: string }).backend;
    const chosen = cap.lines.find((l) => l.msg === 'tensorflow runtime');
    assert.equal(chosen?.runtime, runtime);
    if (nativeInstalled.length === 0) {
      assert.match(runtime, /^@tensorflow\/tfjs \d+\.\d+\.\d+ \(wasm backend\)$/);
      const fallbacks = cap.lines.filter((l) => l.msg === 'native tensorflow unavailable, falling back');
      assert.deepEqual(fallbacks.map((l) => [l.package, l.reason]), NATIVE_TF_PACKAGES.map((n) => [n, 'not installed']));
    } else {
      assert.match(runtime, /^@tensorflow\/tfjs-node(-gpu)? .*\(tensorflow backend\)$/);
    }
  });

  test('native runtime (tfjs-node) serves the TF.js model', { skip: nativeInstalled.length === 0 ? `${NATIVE_TF_PACKAGES.join(' and ')} not installed here (their install downloads libtensorflow)` : false }, async () => {
    const p = await load({ predictor: { modelPath: join(dir, 'layers'), env: { MYELIN_TFJS_RUNTIME: 'native' } } });
    const out = (await p.predict(args(SAMPLES))) as { probabilities: number[][] };
    assertClose(out.probabilities, HAND_PROBABILITIES);
  });

  test('a SavedModel folder without the native bindings is a clear load error', { skip: nativeInstalled.length > 0 ? 'native bindings installed' : false }, async () => {
    await assert.rejects(
      load({ predictor: { modelPath: join(dir, 'saved') } }),
      (err: unknown) => err instanceof PredictorError && err.code === 'ENG_PREDICTOR_MODEL_UNSUPPORTED' && /needs @tensorflow\/tfjs-node/.test(err.message),
    );
  });
});

describe('tensorflow backend on tfjs-wasm, no predictor file', () => {
  test('layers model: probabilities match the hand computation', async () => {
    const p = await load({ predictor: { modelPath: join(dir, 'layers') } });
    const out = (await p.predict(args(SAMPLES))) as Record<string, number[][]>;
    assert.deepEqual(Object.keys(out), ['probabilities']);
    assertClose(out.probabilities, HAND_PROBABILITIES);
    assert.deepEqual((p.describe() as { models: unknown[] }).models, [
      {
        name: '_cortex_default',
        versions: ['1'],
        timestamps: (p.describe() as { models: Array<{ timestamps: number[] }> }).models[0].timestamps,
        status: { 1: 'loaded' },
        format: 'layers-model',
        inputs: [{ name: 'features', dtype: 'float32', shape: [-1, 4] }],
        outputs: [{ name: 'probabilities', dtype: 'float32', shape: [-1, 3] }],
      },
    ]);
  });

  test('graph model from two weight shards: probabilities and int32 labels', async () => {
    const p = await load({ predictor: { modelPath: join(dir, 'graph', 'model.json') } });
    const out = (await p.predict(args({ input: SAMPLES }))) as { probabilities: number[][]; label: number[] };
    assert.deepEqual(out.label, [0, 1, 2]);
    assertClose(out.probabilities, HAND_PROBABILITIES);
  });

  test('multi-input graph model', async () => {
    const p = await load({ predictor: { modelPath: join(dir, 'add') } });
    assert.deepEqual(await p.predict(args({ a: [[1, 2, 3]], b: [[0.5, 0.5, 2]] })), { sum: [[1.5, 2.5, 5]], product: [[0.5, 1, 6]] });
  });

  test('bad input is a 400 naming the input, the expected and the got', async () => {
    const p = await load({ predictor: { modelPath: join(dir, 'layers') } });
    await assertHttp(p.predict(args([[1, 2, 3]])), 400, /input "features": expected shape \[-1, 4\], got \[1, 3\]/);
    await assertHttp(p.predict(args([[1, 2, true, 4]])), 400, /input "features": expected float32 values, got boolean true at \[0\]\[2\]/);
    assertClose(((await p.predict(args([SAMPLES[1]]))) as { probabilities: number[][] }).probabilities, [HAND_PROBABILITIES[1]]);
  });

  test('versions and several models: latest, ?version=, ?model=, model_name error', async () => {
    const p = await load({ predictor: { models: { paths: [{ name: 'iris', path: join(dir, 'versions') }, { name: 'add', path: join(dir, 'add') }] } } });
    await assertHttp(p.predict(args(SAMPLES)), 400, /^model_name was not specified/);
    const latest = (await p.predict(args(SAMPLES, { query: { model: 'iris' } }))) as Record<string, unknown>;
    assert.deepEqual(Object.keys(latest), ['probabilities']);
    const v1 = (await p.predict(args(SAMPLES, { query: { model: 'iris', version: '1' } }))) as Record<string, unknown>;
    assert.deepEqual(v1.label, [0, 1, 2]);
    await assertHttp(p.predict(args(SAMPLES, { query: { model: 'iris', version: '3' } })), 404, /no version 3 \(versions: 1, 2\)/);
  });

  test('a folder with neither model.json nor saved_model.pb is a layout error', async () => {
    await assert.rejects(
      load({ predictor: { modelPath: join(dir, 'nothing') } }),
      (err: unknown) => err instanceof EngineError && err.code === 'ENG_MODEL_LAYOUT' && /nothing\/?: the model is not a valid tensorflow model: neither a SavedModel .* nor a TF\.js model \(model\.json\) \(found: README\.md\)/.test(err.message),
    );
  });
});

describe('tensorflow backend with a TensorFlowPredictor and a request_handler', () => {
  test('TensorFlowPredictor gets tensorflowClient and config', async () => {
    const file = join(dir, 'predictor.ts');
    await writeFile(
      file,
      `export class TensorFlowPredictor {
  constructor({ tensorflowClient, config }) { this.client = tensorflowClient; this.labels = config.labels; }
  async predict({ payload }) {
    const out = await this.client.predict([payload.features]);
    const p = out.probabilities[0];
    return { label: this.labels[p.indexOf(Math.max(...p))], input: this.client.metadata().inputs[0].name };
  }
}
`,
    );
    const p = await load({ predictor: { path: file, modelPath: join(dir, 'layers'), config: { labels: ['setosa', 'versicolor', 'virginica'] } } });
    assert.deepEqual(await p.predict(args({ features: SAMPLES[2] })), { label: 'virginica', input: 'features' });
  });

  test('request_handler: the debug stages after the raw sample, under the request id', async () => {
    const handler = join(dir, 'handler.ts');
    await writeFile(
      handler,
      `export const pre_inference = (sample: { x: number[] }, metadata: { inputs: { name: string }[] }) => ({ [metadata.inputs[0].name]: [sample.x] });
export const post_inference = (prediction: { label: number[] }) => ({ label: prediction.label[0] });
`,
    );
    const cap = captureLog();
    const p = await load({ dialect: 'legacy', predictor: { requestHandler: handler, modelPath: join(dir, 'graph') } });
    const out = await p.predict(args({ x: SAMPLES[1] }, { debug: true }, cap.log.child({ requestId: 'r-9' })));
    assert.deepEqual(out, { label: 1 });
    assert.deepEqual(
      cap.lines.filter((l) => l.msg === 'debug stage').map((l) => [l.requestId, l.stage]),
      [['r-9', 'pre_inference'], ['r-9', 'inference'], ['r-9', 'post_inference']],
    );
  });
});

describe('tensorflow backend registration and threads', () => {
  test('the ContainerModule binds a PredictorBackendContribution of kind tensorflow', async () => {
    const c = new Container();
    await c.load(predictorTensorflowModule, fsModule);
    assert.deepEqual(c.getAll<PredictorBackendContribution>(PredictorBackendContribution).map((b) => b.kind), ['tensorflow']);
  });

  test('loads on tfjs-wasm inside a worker thread', async () => {
    const specJson = JSON.stringify(apiSpecFixture({ projectDir: dir, predictor: { type: 'tensorflow', env: WASM, modelPath: join(dir, 'layers') } }));
    const code = `
      const { parentPort, workerData } = await import('node:worker_threads');
      (await import(workerData.tsxUrl)).register();
      const { pino } = await import(workerData.pinoUrl);
      const { storeModelProvider } = await import(workerData.providerUrl);
      const { TensorFlowPredictorBackend } = await import(workerData.backendUrl);
      const { TsxUserModuleImporter } = await import(workerData.importerUrl);
      const { NodeModelFs } = await import(workerData.modelFsUrl);
      const log = pino({ level: 'silent' });
      const p = await new TensorFlowPredictorBackend(new TsxUserModuleImporter(), new NodeModelFs(), storeModelProvider()).load(JSON.parse(workerData.specJson), log);
      const out = await p.predict({ payload: workerData.samples, query: {}, headers: {}, requestId: 'w', debug: false, log });
      parentPort.postMessage({ out, backend: p.describe().backend });
      await p.close();
    `;
    const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), {
      workerData: {
        providerUrl: new URL('../../harness/store-model-provider.ts', import.meta.url).href,
        importerUrl: new URL('../../../adapters/fs/tsx-user-module-importer.ts', import.meta.url).href,
        modelFsUrl: new URL('../../../adapters/fs/node-model-fs.ts', import.meta.url).href,
        backendUrl: new URL('../../../plugins/predictor-tensorflow/tensorflow-predictor-backend.ts', import.meta.url).href,
        tsxUrl: import.meta.resolve('tsx/esm/api'),
        pinoUrl: import.meta.resolve('pino'),
        specJson,
        samples: SAMPLES,
      },
    });
    const got = await new Promise<{ out: { probabilities: number[][] }; backend: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before answering`)));
    });
    await worker.terminate();
    assert.match(got.backend, /\(wasm backend\)$/);
    assertClose(got.out.probabilities, HAND_PROBABILITIES);
  });
});
