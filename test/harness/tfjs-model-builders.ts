/**
 * Tiny TF.js models on disk (model.json + weight shards), for tests and examples/tfjs-model. No
 * tfjs-node needed: the layers model is built with @tensorflow/tfjs and saved through a custom
 * IOHandler; the graph models are written directly as TF.js graph-model JSON (a GraphDef in JSON).
 *
 * | writer | inputs | outputs |
 * |---|---|---|
 * | `writeTfjsLayersIris` | `features` float32 [-1, 4] | `probabilities` float32 [-1, 3] |
 * | `writeTfjsGraphIris` | `input` float32 [-1, 4] | `probabilities` float32, `label` int32 (2 weight shards) |
 * | `writeTfjsGraphAdd` | `a`, `b` float32 [-1, 3] | `sum`, `product` |
 *
 * All use the iris weights of model-builders.ts (IRIS_COEF, IRIS_INTERCEPT), so the expected
 * outputs can be computed by hand.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IRIS_COEF, IRIS_INTERCEPT } from './model-builders.js';

/** The iris kernel as a [4, 3] row-major Float32Array (feature × class). */
function irisKernel(): Float32Array {
  const w = new Float32Array(12);
  for (let j = 0; j < 4; j++) for (let k = 0; k < 3; k++) w[j * 3 + k] = IRIS_COEF[k][j];
  return w;
}

interface WeightSpec {
  readonly name: string;
  readonly shape: number[];
  readonly dtype: 'float32' | 'int32';
}

async function writeModelJson(dir: string, modelJson: Record<string, unknown>, shards: readonly { file: string; bytes: Uint8Array }[]): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const s of shards) await writeFile(join(dir, s.file), s.bytes);
  const path = join(dir, 'model.json');
  await writeFile(path, `${JSON.stringify(modelJson, null, 1)}\n`);
  return path;
}

/**
 * The iris classifier as a TF.js layers model: `tf.sequential` with one dense softmax layer named
 * `probabilities`, weights set from IRIS_COEF / IRIS_INTERCEPT, saved as model.json + weights.bin.
 * Returns the model.json path.
 */
export async function writeTfjsLayersIris(dir: string): Promise<string> {
  const tf = await import('@tensorflow/tfjs');
  const model = tf.sequential({
    name: 'iris',
    layers: [
      tf.layers.inputLayer({ inputShape: [4], name: 'features' }),
      tf.layers.dense({ units: 3, activation: 'softmax', name: 'probabilities' }),
    ],
  });
  const kernel = tf.tensor2d(irisKernel(), [4, 3]);
  const bias = tf.tensor1d(IRIS_INTERCEPT as number[]);
  model.setWeights([kernel, bias]);
  kernel.dispose();
  bias.dispose();
  let written = '';
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData;
      const bytes = new Uint8Array(Array.isArray(data) ? await new Blob(data).arrayBuffer() : (data as ArrayBuffer));
      written = await writeModelJson(
        dir,
        {
          format: artifacts.format ?? 'layers-model',
          generatedBy: artifacts.generatedBy,
          convertedBy: null,
          modelTopology: artifacts.modelTopology,
          weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
        },
        [{ file: 'weights.bin', bytes }],
      );
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  model.dispose();
  return written;
}

const dims = (shape: readonly number[]) => ({ dim: shape.map((d) => ({ size: String(d) })) });
const placeholder = (name: string, shape: number[]) => ({ name, op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: dims(shape) } } });
const constNode = (name: string, shape: number[], dtype: 'DT_FLOAT' | 'DT_INT32') => ({
  name,
  op: 'Const',
  attr: { dtype: { type: dtype }, value: { tensor: { dtype, tensorShape: dims(shape) } } },
});
const floatOp = (name: string, op: string, input: string[]) => ({ name, op, input, attr: { T: { type: 'DT_FLOAT' } } });

function graphModelJson(nodes: unknown[], weights: WeightSpec[], paths: string[]): Record<string, unknown> {
  return {
    format: 'graph-model',
    generatedBy: 'myelin test harness',
    convertedBy: null,
    modelTopology: { node: nodes, library: {}, versions: { producer: 1 } },
    weightsManifest: weights.length ? [{ paths, weights }] : [],
  };
}

/**
 * The iris classifier as a TF.js graph model: `probabilities = Softmax(input · W + B)`,
 * `label = ArgMax(input · W + B, 1)` (int32). Weights are split over two shard files
 * (group1-shard1of2.bin: W; group1-shard2of2.bin: B and the ArgMax axis) to exercise shard loading.
 * Returns the model.json path.
 */
export async function writeTfjsGraphIris(dir: string): Promise<string> {
  const nodes = [
    placeholder('input', [-1, 4]),
    constNode('W', [4, 3], 'DT_FLOAT'),
    constNode('B', [3], 'DT_FLOAT'),
    constNode('axis', [], 'DT_INT32'),
    { ...floatOp('xw', 'MatMul', ['input', 'W']), attr: { T: { type: 'DT_FLOAT' }, transpose_a: { b: false }, transpose_b: { b: false } } },
    floatOp('logits', 'BiasAdd', ['xw', 'B']),
    floatOp('probabilities', 'Softmax', ['logits']),
    { name: 'label', op: 'ArgMax', input: ['logits', 'axis'], attr: { T: { type: 'DT_FLOAT' }, Tidx: { type: 'DT_INT32' }, output_type: { type: 'DT_INT32' } } },
  ];
  const weights: WeightSpec[] = [
    { name: 'W', shape: [4, 3], dtype: 'float32' },
    { name: 'B', shape: [3], dtype: 'float32' },
    { name: 'axis', shape: [], dtype: 'int32' },
  ];
  const shard2 = new Uint8Array(16);
  new Float32Array(shard2.buffer, 0, 3).set(IRIS_INTERCEPT);
  new Int32Array(shard2.buffer, 12, 1)[0] = 1;
  const paths = ['group1-shard1of2.bin', 'group1-shard2of2.bin'];
  return writeModelJson(dir, graphModelJson(nodes, weights, paths), [
    { file: paths[0], bytes: new Uint8Array(irisKernel().buffer) },
    { file: paths[1], bytes: shard2 },
  ]);
}

/** Two named inputs as a TF.js graph model: `sum = a + b`, `product = a * b`. Returns the model.json path. */
export async function writeTfjsGraphAdd(dir: string): Promise<string> {
  const nodes = [placeholder('a', [-1, 3]), placeholder('b', [-1, 3]), floatOp('sum', 'AddV2', ['a', 'b']), floatOp('product', 'Mul', ['a', 'b'])];
  return writeModelJson(dir, graphModelJson(nodes, [], []), []);
}
