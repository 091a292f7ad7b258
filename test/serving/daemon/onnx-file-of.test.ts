// The `.onnx` file of a local model version (onnxFileOf): a folder with none or several is
// `ModelStoreError` `ENG_MODEL_LAYOUT` naming the folder, and checkOnnxBatching, its caller at deploy,
// skips such a version (the replica's load reports it) instead of refusing or crashing the deploy.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EngineError } from '../../../core/errors.js';
import { ModelStoreError } from '../../../core/ports/model-store.js';
import type { ModelTreeEntry } from '../../../core/predictor/model-tree.js';
import { checkOnnxBatching, onnxFileOf } from '../../../serving/daemon/model-preparation.js';
import { apiSpecFixture } from '../../harness/api-spec-fixture.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-onnx-file-of-'));
  for (const [folder, files] of [
    ['one', ['model.onnx', 'labels.txt']],
    ['none', ['labels.txt']],
    ['two', ['b.onnx', 'a.onnx']],
  ] as const) {
    await mkdir(join(dir, folder));
    for (const f of files) await writeFile(join(dir, folder, f), 'x');
  }
  await writeFile(join(dir, 'single.onnx'), 'x');
});
after(() => rm(dir, { recursive: true, force: true }));

describe('onnxFileOf', () => {
  const ok: Array<{ name: string; path: () => string; want: () => string }> = [
    { name: 'a file is itself', path: () => join(dir, 'single.onnx'), want: () => join(dir, 'single.onnx') },
    { name: 'a folder with one *.onnx: that file', path: () => join(dir, 'one'), want: () => join(dir, 'one', 'model.onnx') },
  ];
  for (const c of ok) test(c.name, async () => assert.equal(await onnxFileOf(c.path()), c.want()));

  const refused: Array<{ name: string; folder: string; found: string }> = [
    { name: 'a folder without *.onnx', folder: 'none', found: 'none' },
    { name: 'a folder with two *.onnx', folder: 'two', found: 'a.onnx, b.onnx' },
  ];
  for (const c of refused) {
    test(`${c.name} is ENG_MODEL_LAYOUT`, async () => {
      const path = join(dir, c.folder);
      await assert.rejects(onnxFileOf(path), (err: unknown) => {
        assert.ok(err instanceof ModelStoreError && err instanceof EngineError, `want ModelStoreError, got ${String(err)}`);
        assert.deepEqual([err.code, err.url, err.message], ['ENG_MODEL_LAYOUT', path, `${path}: expected exactly one *.onnx file in the model folder (found: ${c.found})`]);
        return true;
      });
    });
  }
});

test('checkOnnxBatching skips a version whose folder holds two *.onnx (no problem, no throw)', async () => {
  const spec = apiSpecFixture({ name: 'zoo', predictor: { type: 'onnx', serverSideBatching: { maxBatchSize: 4, batchIntervalMs: 5 } } });
  const model: ModelTreeEntry = { name: 'm', url: join(dir, 'two'), versions: [{ version: '1', url: `${join(dir, 'two')}/`, objects: [], timestamp: 0 }] };
  let asked = 0;
  const provider = {
    localVersion: async () => {
      asked++;
      return { path: join(dir, 'two'), hit: true, bytes: 2 };
    },
  };
  await checkOnnxBatching({ specs: [spec], discovered: new Map([['zoo', [model]]]), provider, configFile: 'cortex.yaml' });
  assert.equal(asked, 1, 'the version was looked at');
});
