/**
 * Builds model/iris.onnx (the same iris classifier as examples/iris-onnx; see that build-model.ts).
 * Run from the repository root: `node --import tsx examples/legacy-onnx/build-model.ts`
 */
import { fileURLToPath } from 'node:url';
import { irisModel, writeOnnxModel } from '../../test/harness/model-builders.js';

const out = fileURLToPath(new URL('./model/iris.onnx', import.meta.url));
await writeOnnxModel(out, irisModel());
console.log(`wrote ${out}`);
