// The deploy-time check of server_side_batching against an onnx model's batch dimension: the graph
// inputs are read from the file (no onnxruntime, weights skipped) and match what onnxruntime reports;
// a model fixed at batch 1 refuses the deploy at max_batch_size's line, naming the version's URL.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import { ConfigError, PredictorError } from '../../../core/errors.js';
import { readOnnxInputs } from '../../../plugins/predictor-onnx/onnx-inputs.js';
import { checkOnnxBatching, discoverApiModels } from '../../../serving/daemon/model-preparation.js';
import { encodeOnnxModel } from '../../harness/onnx-proto.js';
import { addModel, irisModel, writeOnnxModel } from '../../harness/model-builders.js';
import { storeModelProvider } from '../../harness/store-model-provider.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-batch-check-'));
  await mkdir(join(dir, 'zoo', 'good', '1'), { recursive: true });
  await mkdir(join(dir, 'zoo', 'fixed', '3'), { recursive: true });
  await writeOnnxModel(join(dir, 'zoo', 'good', '1', 'iris.onnx'), irisModel());
  await writeOnnxModel(
    join(dir, 'zoo', 'fixed', '3', 'fixed.onnx'),
    encodeOnnxModel({
      graphName: 'fixed',
      inputs: [{ name: 'x', elemType: 'float32', shape: [1, 3] }],
      outputs: [{ name: 'y', elemType: 'float32', shape: [1, 3] }],
      nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['y'] }],
    }),
  );
});
after(() => rm(dir, { recursive: true, force: true }));

describe('readOnnxInputs', () => {
  test('names and shapes as onnxruntime reports them; initializers are not inputs', async () => {
    const cases = [
      ['iris', irisModel()],
      ['add', addModel()],
    ] as const;
    for (const [name, bytes] of cases) {
      const file = join(dir, `${name}.onnx`);
      await writeOnnxModel(file, bytes);
      const session = await ort.InferenceSession.create(file);
      try {
        const want = session.inputMetadata.map((m) => ({ name: m.name, shape: [...(m as unknown as { shape: Array<number | string> }).shape] }));
        assert.deepEqual(await readOnnxInputs(file), want, name);
      } finally {
        await session.release();
      }
    }
  });

  test('a file that is not an ONNX model is an error, not a hang', async () => {
    const file = join(dir, 'junk.onnx');
    await writeFile(file, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2]));
    await assert.rejects(readOnnxInputs(file), (err: unknown) => err instanceof PredictorError && err.code === 'ENG_PREDICTOR_MODEL_INVALID' && err.message.startsWith(`${file}: not a readable ONNX model: `));
  });
});

describe('checkOnnxBatching at deploy', () => {
  test('a version fixed at batch 1 is a problem at max_batch_size naming its URL; a dynamic one passes', async () => {
    const yaml = `- name: zoo
  kind: RealtimeAPI
  predictor:
    type: onnx
    threads_per_process: 4
    models:
      dir: zoo/
    server_side_batching:
      max_batch_size: 4
      batch_interval: 5ms
`;
    const file = join(dir, 'cortex.yaml');
    await writeFile(file, yaml);
    const { specs } = await loadApiSpecsFromFile(file, { files: nodeProjectFileSystem });
    const provider = storeModelProvider();
    const discovered = await discoverApiModels({ specs, provider, configFile: 'cortex.yaml' });
    await assert.rejects(checkOnnxBatching({ specs, discovered, provider, configFile: 'cortex.yaml', configText: yaml }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems.length, 1);
      const p = err.problems[0];
      assert.deepEqual([p.line, p.col, p.field], [9, 7, 'predictor.server_side_batching.max_batch_size']);
      assert.match(p.message, /zoo\/fixed\/3\/: model "fixed" version 3: input "x" has shape \[1, 3\]: its first \(batch\) dimension is fixed at 1, below max_batch_size 4/);
      return true;
    });
    const good = specs.map((s) => ({ ...s, predictor: { ...s.predictor, models: { dir: join(dir, 'zoo', 'good') } } }));
    const discoveredGood = new Map([['zoo', (await discoverApiModels({ specs: good, provider, configFile: 'cortex.yaml' })).get('zoo')!]]);
    await checkOnnxBatching({ specs: good, discovered: discoveredGood, provider, configFile: 'cortex.yaml' });
  });
});
