/**
 * Builds model/iris.onnx, the model this example serves: a multinomial logistic regression on the four
 * iris measurements (coefficients close to scikit-learn's on the iris data set), written as ONNX
 * protobuf by the repository's in-repo encoder (test/harness/onnx-proto.ts), so no Python or `onnx`
 * package is needed. Inputs: `input` float32 [batch, 4]; outputs: `label` int64 [batch],
 * `probabilities` float32 [batch, 3].
 *
 * Run from the repository root: `node --import tsx examples/iris-onnx/build-model.ts`
 */
import { fileURLToPath } from 'node:url';
import { irisModel, writeOnnxModel } from '../../test/harness/model-builders.js';

const out = fileURLToPath(new URL('./model/iris.onnx', import.meta.url));
await writeOnnxModel(out, irisModel());
console.log(`wrote ${out}`);
