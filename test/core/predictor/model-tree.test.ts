import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PredictorSpec } from '../../../core/config/api-spec.js';
import { ModelStoreError, type StoredObject } from '../../../core/ports/model-store.js';
import {
  discoverModels,
  modelFormatOf,
  modelsInDir,
  modelTreeEntry,
  ONNX_FORMAT,
  SINGLE_MODEL_NAME,
  TENSORFLOW_FORMAT,
  versionLocalPath,
} from '../../../core/predictor/model-tree.js';

const obj = (key: string, size = 10, lastModified = 1_600_000_000_000): StoredObject => ({ key, size, lastModified });
const predictor = (p: Partial<PredictorSpec>): PredictorSpec => ({ type: 'onnx', env: {}, ...p }) as PredictorSpec;

/** A store as a map of full object URLs; `list` answers like ModelStore.list. */
function store(urls: readonly string[]): (url: string) => Promise<StoredObject[]> {
  return async (url) => {
    if (urls.includes(url)) return [obj('')];
    const prefix = url.endsWith('/') ? url : `${url}/`;
    return urls.filter((u) => u.startsWith(prefix)).map((u) => obj(u.slice(prefix.length)));
  };
}

describe('modelTreeEntry', () => {
  test('a folder without version folders is version 1', () => {
    const e = modelTreeEntry('m', 's3://b/iris', [obj('iris.onnx')], ONNX_FORMAT);
    assert.deepEqual(
      e.versions.map((v) => [v.version, v.url, v.objects.map((o) => o.key), v.timestamp]),
      [['1', 's3://b/iris/', ['iris.onnx'], 1_600_000_000]],
    );
  });

  test('integer folders are versions, ascending by number, leading zeros dropped', () => {
    const e = modelTreeEntry('m', 's3://b/m/', [obj('10/a.onnx'), obj('2/a.onnx'), obj('0003/a.onnx'), obj('README.md')], ONNX_FORMAT);
    assert.deepEqual(
      e.versions.map((v) => [v.version, v.url]),
      [
        ['2', 's3://b/m/2/'],
        ['3', 's3://b/m/0003/'],
        ['10', 's3://b/m/10/'],
      ],
    );
    assert.deepEqual(e.versions[0].objects.map((o) => o.key), ['a.onnx']);
  });

  test('a URL naming a model file is version 1 of that file', () => {
    const e = modelTreeEntry(SINGLE_MODEL_NAME, 'https://h/x/iris.onnx', [obj('')], ONNX_FORMAT);
    assert.equal(e.versions[0].url, 'https://h/x/iris.onnx');
    assert.equal(versionLocalPath(e.versions[0], '/cache/k'), '/cache/k/iris.onnx');
  });

  test('a presigned HTTPS URL names its file without the query string', () => {
    const url = 'https://h/x/iris.onnx?X-Amz-Signature=abc&X-Amz-Expires=600';
    const e = modelTreeEntry(SINGLE_MODEL_NAME, url, [obj('')], ONNX_FORMAT);
    assert.equal(versionLocalPath(e.versions[0], '/cache/k'), '/cache/k/iris.onnx');
  });

  const bad: { name: string; objects: StoredObject[]; url: string; format: typeof ONNX_FORMAT; code: string; want: RegExp }[] = [
    { name: 'nothing stored', objects: [], url: 's3://b/none/', format: ONNX_FORMAT, code: 'ENG_MODEL_NOT_FOUND', want: /^s3:\/\/b\/none\/: the model was not found/ },
    { name: 'no onnx file', objects: [obj('model.pkl')], url: 's3://b/m/', format: ONNX_FORMAT, code: 'ENG_MODEL_LAYOUT', want: /no \*\.onnx file \(found: model\.pkl\); expected:\n {2}<model>\.onnx/ },
    { name: 'two onnx files', objects: [obj('a.onnx'), obj('b.onnx')], url: 's3://b/m/', format: ONNX_FORMAT, code: 'ENG_MODEL_LAYOUT', want: /more than one \*\.onnx file \(a\.onnx, b\.onnx\)/ },
    { name: 'a bad version names it', objects: [obj('1/a.onnx'), obj('2/notes.txt')], url: 's3://b/m/', format: ONNX_FORMAT, code: 'ENG_MODEL_LAYOUT', want: /^s3:\/\/b\/m\/2\/: .*version 2: no \*\.onnx file/ },
    { name: 'two folders of one version', objects: [obj('1/a.onnx'), obj('01/a.onnx')], url: 's3://b/m/', format: ONNX_FORMAT, code: 'ENG_MODEL_LAYOUT', want: /folders 1\/ and 01\/ are both version 1; keep one/ },
    { name: 'SavedModel without variables', objects: [obj('saved_model.pb')], url: 's3://b/tf/', format: TENSORFLOW_FORMAT, code: 'ENG_MODEL_LAYOUT', want: /saved_model\.pb without a variables\/ folder/ },
    { name: 'single file of the wrong kind', objects: [obj('')], url: 's3://b/model.pkl', format: ONNX_FORMAT, code: 'ENG_MODEL_LAYOUT', want: /model\.pkl is a single file, not a onnx model file/ },
  ];
  for (const c of bad) {
    test(`refused: ${c.name}`, () => {
      assert.throws(
        () => modelTreeEntry(SINGLE_MODEL_NAME, c.url, c.objects, c.format),
        (err: unknown) => err instanceof ModelStoreError && err.code === c.code && c.want.test(err.message) && err.url.startsWith('s3://'),
      );
    });
  }

  test('TensorFlow takes a SavedModel or a TF.js model.json; python takes anything non-empty', () => {
    assert.equal(TENSORFLOW_FORMAT.checkVersion([obj('saved_model.pb'), obj('variables/variables.index')]), null);
    assert.equal(TENSORFLOW_FORMAT.checkVersion([obj('model.json'), obj('group1-shard1of1.bin')]), null);
    assert.equal(modelFormatOf('python').checkVersion([obj('model.pkl')]), null);
    assert.match(modelFormatOf('python').checkVersion([]) ?? '', /empty/);
  });
});

describe('modelsInDir', () => {
  test('top-level folders and model files are models; dot entries are skipped', () => {
    const models = modelsInDir('s3://b/models/', [obj('resnet/1/r.onnx'), obj('resnet/2/r.onnx'), obj('iris.onnx'), obj('.keep/x'), obj('notes.txt')], ONNX_FORMAT);
    assert.deepEqual(
      models.map((m) => [m.name, m.versions.map((v) => v.version)]),
      [
        ['iris', ['1']],
        ['resnet', ['1', '2']],
      ],
    );
    assert.equal(models[0].versions[0].url, 's3://b/models/iris.onnx');
  });

  test('a dir without models is a layout error naming it', () => {
    assert.throws(() => modelsInDir('s3://b/models/', [obj('notes.txt')], ONNX_FORMAT), /s3:\/\/b\/models\/: models.dir holds no model/);
  });
});

describe('discoverModels', () => {
  const s = store(['s3://b/iris/1/a.onnx', 's3://b/iris/2/a.onnx', 's3://b/mob/m.onnx', 's3://b/file.onnx']);

  test('model_path is the single model', async () => {
    const got = await discoverModels(predictor({ modelPath: 's3://b/file.onnx' }), s);
    assert.deepEqual(got.map((m) => [m.name, m.versions.length]), [[SINGLE_MODEL_NAME, 1]]);
  });

  test('models.paths names each model; models.dir lists them', async () => {
    const paths = await discoverModels(predictor({ models: { paths: [{ name: 'iris', path: 's3://b/iris/' }, { name: 'mob', path: 's3://b/mob' }] } }), s);
    assert.deepEqual(paths.map((m) => [m.name, m.versions.map((v) => v.version)]), [['iris', ['1', '2']], ['mob', ['1']]]);
    const dir = await discoverModels(predictor({ models: { dir: 's3://b/' } }), s);
    assert.deepEqual(dir.map((m) => m.name), ['file', 'iris', 'mob']);
  });

  test('no model fields: no models', async () => {
    assert.deepEqual(await discoverModels(predictor({ type: 'python' }), s), []);
  });

  test('a missing model names its URL', async () => {
    await assert.rejects(discoverModels(predictor({ models: { paths: [{ name: 'x', path: 's3://b/nope/' }] } }), s), /s3:\/\/b\/nope\/: model "x" was not found/);
  });
});
