/**
 * Builds model/model.json + model/weights.bin, the TF.js layers model this example serves: the iris
 * classifier as `tf.sequential` (one dense softmax layer) with deterministic weights (the same
 * logistic-regression coefficients as examples/iris-onnx), saved through a custom IOHandler because
 * plain @tensorflow/tfjs has no file:// saver in Node (that one comes with tfjs-node).
 *
 * Run from the repository root: `node --import tsx examples/tfjs-model/build-model.ts`
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';

// Rows: features (sepal length, sepal width, petal length, petal width); columns: classes.
const KERNEL = [
  [-0.42, 0.53, -0.11],
  [0.97, -0.32, -0.65],
  [-2.52, -0.21, 2.73],
  [-1.08, -0.94, 2.02],
];
const BIAS = [9.85, 2.24, -12.09];

const dir = fileURLToPath(new URL('./model/', import.meta.url));
const model = tf.sequential({
  name: 'iris',
  layers: [tf.layers.inputLayer({ inputShape: [4], name: 'features' }), tf.layers.dense({ units: 3, activation: 'softmax', name: 'probabilities' })],
});
model.setWeights([tf.tensor2d(KERNEL), tf.tensor1d(BIAS)]);

await model.save(
  tf.io.withSaveHandler(async (artifacts) => {
    const data = artifacts.weightData;
    const weights = new Uint8Array(Array.isArray(data) ? await new Blob(data).arrayBuffer() : (data as ArrayBuffer));
    await mkdir(dir, { recursive: true });
    await writeFile(`${dir}weights.bin`, weights);
    const modelJson = {
      format: 'layers-model',
      generatedBy: artifacts.generatedBy,
      convertedBy: null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
    };
    await writeFile(`${dir}model.json`, `${JSON.stringify(modelJson, null, 1)}\n`);
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }),
);
console.log(`wrote ${dir}model.json and ${dir}weights.bin`);
