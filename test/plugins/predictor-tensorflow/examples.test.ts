import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { NodeModelFs } from '../../../adapters/fs/node-model-fs.js';
import { TsxUserModuleImporter } from '../../../adapters/fs/tsx-user-module-importer.js';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import type { LoadedPredictor } from '../../../core/ports/predictor-backend.js';
import { TensorFlowPredictorBackend } from '../../../plugins/predictor-tensorflow/tensorflow-predictor-backend.js';
import { storeModelProvider } from '../../harness/store-model-provider.js';

const example = (p: string) => fileURLToPath(new URL(`../../../examples/${p}`, import.meta.url));
const log = pino({ level: 'silent' });
let p: LoadedPredictor | undefined;
after(() => p?.close());

test('tfjs-model example: sample.json rows are a setosa and a virginica', async () => {
  const { specs } = await loadApiSpecsFromFile(example('tfjs-model/myelin.yaml'), { files: nodeProjectFileSystem });
  const spec = { ...specs[0], predictor: { ...specs[0].predictor, env: { MYELIN_TFJS_RUNTIME: 'wasm' } } };
  p = await new TensorFlowPredictorBackend(new TsxUserModuleImporter(), new NodeModelFs(), storeModelProvider()).load(spec, log);
  const sample = JSON.parse(await readFile(example('tfjs-model/sample.json'), 'utf8'));
  const out = (await p.predict({ payload: sample, query: {}, headers: {}, requestId: 'r', debug: false, log })) as {
    predictions: { label: string; confidence: number }[];
  };
  assert.deepEqual(out.predictions.map((x) => x.label), ['setosa', 'virginica']);
  assert.ok(out.predictions.every((x) => x.confidence > 0.9 && x.confidence <= 1));
});
