/**
 * Tiny ONNX models for tests, examples and benchmarks, built in-repo by `onnx-proto.ts` (no Python, no
 * network). Each builder returns the `.onnx` bytes; `writeOnnxModel` puts them on disk.
 *
 * | builder | inputs | outputs |
 * |---|---|---|
 * | `irisModel()` | `input` float32 [batch, 4] | `label` int64 [batch], `probabilities` float32 [batch, 3] |
 * | `addModel()` | `a`, `b` float32 [batch, 3] | `sum`, `product` float32 [batch, 3] |
 * | `int64Model()` | `ids` int64 [batch, 3] | `doubled` int64 [batch, 3], `total` int64 [batch] |
 * | `heavyModel()` | `x` float32 [batch, 256] | `scores` float32 [batch, 10] (a few ms per row) |
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { encodeOnnxModel, type OnnxInitializer } from './onnx-proto.js';

/** Iris class names, in the order of the classifier's outputs. */
export const IRIS_LABELS = ['setosa', 'versicolor', 'virginica'] as const;

/**
 * Weights of the iris classifier: a multinomial logistic regression, 3 classes × 4 features
 * (sepal length, sepal width, petal length, petal width, in cm). Coefficients close to what
 * scikit-learn's LogisticRegression finds on the iris data set, rounded to two decimals so that a
 * test can compute the expected logits by hand.
 */
export const IRIS_COEF: readonly (readonly number[])[] = [
  [-0.42, 0.97, -2.52, -1.08],
  [0.53, -0.32, -0.21, -0.94],
  [-0.11, -0.65, 2.73, 2.02],
];
export const IRIS_INTERCEPT: readonly number[] = [9.85, 2.24, -12.09];

/** Logits `coef · x + intercept` for one sample, the computation the model does (in float64 here). */
export function irisLogits(x: readonly number[], intercept: readonly number[] = IRIS_INTERCEPT): number[] {
  return IRIS_COEF.map((row, k) => row.reduce((s, c, j) => s + c * x[j], intercept[k]));
}

/** Softmax of a vector (float64). */
export function softmax(v: readonly number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/**
 * The iris classifier: `logits = input · W + B`, `probabilities = Softmax(logits)`,
 * `label = ArgMax(logits, axis 1)`. The batch dimension is symbolic (`batch`). `intercept` replaces
 * `IRIS_INTERCEPT` (tests use it to tell two versions of the model apart).
 */
export function irisModel(options: { readonly intercept?: readonly number[] } = {}): Uint8Array {
  const w: number[] = [];
  for (let j = 0; j < 4; j++) for (let k = 0; k < 3; k++) w.push(IRIS_COEF[k][j]);
  return encodeOnnxModel({
    graphName: 'iris_classifier',
    docString: 'multinomial logistic regression on the 4 iris features',
    inputs: [{ name: 'input', elemType: 'float32', shape: ['batch', 4] }],
    outputs: [
      { name: 'label', elemType: 'int64', shape: ['batch'] },
      { name: 'probabilities', elemType: 'float32', shape: ['batch', 3] },
    ],
    initializers: [
      { name: 'W', elemType: 'float32', dims: [4, 3], data: w },
      { name: 'B', elemType: 'float32', dims: [3], data: options.intercept ?? IRIS_INTERCEPT },
    ],
    nodes: [
      { opType: 'MatMul', inputs: ['input', 'W'], outputs: ['xw'] },
      { opType: 'Add', inputs: ['xw', 'B'], outputs: ['logits'] },
      { opType: 'Softmax', inputs: ['logits'], outputs: ['probabilities'], attributes: { axis: { kind: 'int', value: 1 } } },
      {
        opType: 'ArgMax',
        inputs: ['logits'],
        outputs: ['label'],
        attributes: { axis: { kind: 'int', value: 1 }, keepdims: { kind: 'int', value: 0 } },
      },
    ],
  });
}

/** Two named inputs: `sum = a + b`, `product = a * b`. */
export function addModel(): Uint8Array {
  return encodeOnnxModel({
    graphName: 'add_mul',
    inputs: [
      { name: 'a', elemType: 'float32', shape: ['batch', 3] },
      { name: 'b', elemType: 'float32', shape: ['batch', 3] },
    ],
    outputs: [
      { name: 'sum', elemType: 'float32', shape: ['batch', 3] },
      { name: 'product', elemType: 'float32', shape: ['batch', 3] },
    ],
    nodes: [
      { opType: 'Add', inputs: ['a', 'b'], outputs: ['sum'] },
      { opType: 'Mul', inputs: ['a', 'b'], outputs: ['product'] },
    ],
  });
}

/** An int64 input: `doubled = ids * 2`, `total = sum of ids along axis 1`. */
export function int64Model(): Uint8Array {
  return encodeOnnxModel({
    graphName: 'int64_ops',
    inputs: [{ name: 'ids', elemType: 'int64', shape: ['batch', 3] }],
    outputs: [
      { name: 'doubled', elemType: 'int64', shape: ['batch', 3] },
      { name: 'total', elemType: 'int64', shape: ['batch'] },
    ],
    initializers: [
      { name: 'two', elemType: 'int64', dims: [], data: [2] },
      { name: 'axes', elemType: 'int64', dims: [1], data: [1] },
    ],
    nodes: [
      { opType: 'Mul', inputs: ['ids', 'two'], outputs: ['doubled'] },
      { opType: 'ReduceSum', inputs: ['ids', 'axes'], outputs: ['total'], attributes: { keepdims: { kind: 'int', value: 0 } } },
    ],
  });
}

export interface HeavyModelOptions {
  /** Width of the input and of the square matrices (default 256). */
  readonly size?: number;
  /** Number of size×size×size batched MatMuls per row (default 8). */
  readonly matmuls?: number;
}

/** A deterministic weight in [-1/16, 1/16]. */
function weight(i: number, j: number): number {
  return Math.sin(i * 7.1 + j * 3.3) / 16;
}

/**
 * A ms-scale model for benchmarks: `x` [batch, size] is broadcast to [batch, size, size], scaled by
 * W, then multiplied by W `matmuls` times (ReLU between), averaged over the last axis and projected to
 * 10 scores. Each row costs about `matmuls × size³` multiply-adds (8 × 256³ ≈ 134 M by default: about 3 ms
 * on one core), while the request stays small (`size` numbers in, 10 out).
 */
export function heavyModel(options: HeavyModelOptions = {}): Uint8Array {
  const size = options.size ?? 256;
  const matmuls = options.matmuls ?? 8;
  const w = new Float32Array(size * size);
  for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) w[i * size + j] = weight(i, j);
  const w2 = new Float32Array(size * 10);
  for (let i = 0; i < size; i++) for (let j = 0; j < 10; j++) w2[i * 10 + j] = weight(j, i) * 4;
  const initializers: OnnxInitializer[] = [
    { name: 'W', elemType: 'float32', dims: [size, size], data: w },
    { name: 'W2', elemType: 'float32', dims: [size, 10], data: w2 },
    { name: 'rowShape', elemType: 'int64', dims: [3], data: [-1, 1, size] },
    { name: 'squareShape', elemType: 'int64', dims: [3], data: [1, size, size] },
  ];
  const nodes = [
    { opType: 'Reshape', inputs: ['x', 'rowShape'], outputs: ['row'] },
    { opType: 'Expand', inputs: ['row', 'squareShape'], outputs: ['square'] },
    { opType: 'Mul', inputs: ['square', 'W'], outputs: ['h0'] },
  ];
  for (let k = 1; k <= matmuls; k++) {
    nodes.push({ opType: 'MatMul', inputs: [`h${k - 1}`, 'W'], outputs: [`m${k}`] });
    nodes.push({ opType: 'Relu', inputs: [`m${k}`], outputs: [`h${k}`] });
  }
  return encodeOnnxModel({
    graphName: 'heavy',
    inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', size] }],
    outputs: [{ name: 'scores', elemType: 'float32', shape: ['batch', 10] }],
    initializers,
    nodes: [
      ...nodes,
      {
        opType: 'ReduceMean',
        inputs: [`h${matmuls}`],
        outputs: ['pooled'],
        attributes: { axes: { kind: 'ints', value: [2] }, keepdims: { kind: 'int', value: 0 } },
      },
      { opType: 'MatMul', inputs: ['pooled', 'W2'], outputs: ['scores'] },
    ],
  });
}

/** Writes model bytes to `path`, creating parent folders; returns `path`. */
export async function writeOnnxModel(path: string, bytes: Uint8Array): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
  return path;
}
