import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { TsxUserModuleImporter } from '../../../adapters/fs/tsx-user-module-importer.js';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import { HttpError } from '../../../core/errors.js';
import type { BackendPredictArgs, LoadedPredictor } from '../../../core/ports/predictor-backend.js';
import { OnnxPredictorBackend } from '../../../plugins/predictor-onnx/onnx-predictor-backend.js';
import { irisModel } from '../../harness/model-builders.js';
import { storeModelProvider } from '../../harness/store-model-provider.js';

const example = (p: string) => fileURLToPath(new URL(`../../../examples/${p}`, import.meta.url));
const log = pino({ level: 'silent' });
const args = (payload: unknown): BackendPredictArgs => ({ payload, query: {}, headers: {}, requestId: 'r', debug: false, log });
const opened: LoadedPredictor[] = [];
after(() => Promise.all(opened.map((p) => p.close())));

async function serve(project: string): Promise<LoadedPredictor> {
  const { specs } = await loadApiSpecsFromFile(example(`${project}/myelin.yaml`), { files: nodeProjectFileSystem });
  const p = await new OnnxPredictorBackend(new TsxUserModuleImporter(), storeModelProvider()).load(specs[0], log);
  opened.push(p);
  return p;
}

describe('onnx examples', () => {
  test('the committed iris.onnx files are what build-model.ts writes', async () => {
    for (const project of ['iris-onnx', 'legacy-onnx']) {
      assert.deepEqual(new Uint8Array(await readFile(example(`${project}/model/iris.onnx`))), irisModel(), project);
    }
  });

  test('iris-onnx: sample.json is a setosa; bad input is a 400', async () => {
    const p = await serve('iris-onnx');
    const sample = JSON.parse(await readFile(example('iris-onnx/sample.json'), 'utf8'));
    const out = (await p.predict(args(sample))) as { label: string; probabilities: Record<string, number> };
    assert.equal(out.label, 'setosa');
    assert.deepEqual(Object.keys(out.probabilities), ['setosa', 'versicolor', 'virginica']);
    await assert.rejects(p.predict(args({ sepal_length: 'x' })), (err: unknown) => err instanceof HttpError && err.status === 400);
  });

  test('legacy-onnx: request_handler answers with the class label', async () => {
    const p = await serve('legacy-onnx');
    const sample = JSON.parse(await readFile(example('legacy-onnx/sample.json'), 'utf8'));
    const out = (await p.predict(args(sample))) as { class_label: string; class_index: number; probabilities: number[] };
    assert.deepEqual([out.class_label, out.class_index, out.probabilities.length], ['versicolor', 1, 3]);
  });
});
