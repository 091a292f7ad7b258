import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PredictorSpec } from '../../../core/config/api-spec.js';
import { PredictorError } from '../../../core/errors.js';
import { DEFAULT_MODEL_NAME, locateModels, type FsEntryKind, type ModelFs } from '../../../core/predictor/model-layout.js';

/** A file tree as a list of paths; folders end with `/`. */
function treeFs(paths: readonly string[]): ModelFs {
  const entries = new Map<string, FsEntryKind>();
  for (const p of paths) {
    const isDir = p.endsWith('/');
    const clean = isDir ? p.slice(0, -1) : p;
    entries.set(clean, isDir ? 'dir' : 'file');
    const parts = clean.split('/');
    for (let i = 2; i < parts.length; i++) entries.set(parts.slice(0, i).join('/'), 'dir');
  }
  return {
    async kind(path) {
      return entries.get(path.replace(/\/$/, '')) ?? null;
    },
    async list(dir) {
      const prefix = `${dir.replace(/\/$/, '')}/`;
      return [...entries]
        .filter(([p]) => p.startsWith(prefix) && !p.slice(prefix.length).includes('/'))
        .map(([p, kind]) => ({ name: p.slice(prefix.length), kind }));
    },
  };
}

const rules = { backend: 'onnx', isModelFile: (n: string) => n.endsWith('.onnx') };
const predictor = (p: Partial<PredictorSpec>): PredictorSpec => p as PredictorSpec;

describe('locateModels', () => {
  const cases: { name: string; tree: string[]; spec: Partial<PredictorSpec>; want: unknown }[] = [
    {
      name: 'model_path to a file is version 1 of _cortex_default',
      tree: ['/m/iris.onnx'],
      spec: { modelPath: '/m/iris.onnx' },
      want: [{ name: DEFAULT_MODEL_NAME, versions: [{ version: '1', path: '/m/iris.onnx' }] }],
    },
    {
      name: 'a folder without integer sub-folders is version 1',
      tree: ['/m/model.onnx', '/m/notes/'],
      spec: { models: { path: '/m' } },
      want: [{ name: DEFAULT_MODEL_NAME, versions: [{ version: '1', path: '/m' }] }],
    },
    {
      name: 'integer sub-folders are versions, sorted numerically (latest last)',
      tree: ['/m/2/a.onnx', '/m/10/a.onnx', '/m/1617181920/a.onnx', '/m/tmp/a.onnx'],
      spec: { modelPath: '/m' },
      want: [
        {
          name: DEFAULT_MODEL_NAME,
          versions: [
            { version: '2', path: '/m/2' },
            { version: '10', path: '/m/10' },
            { version: '1617181920', path: '/m/1617181920' },
          ],
        },
      ],
    },
    {
      name: 'models.paths names each model and keeps signature keys',
      tree: ['/a/x.onnx', '/b/1/y.onnx'],
      spec: { models: { paths: [{ name: 'a', path: '/a/x.onnx' }, { name: 'b', path: '/b', signatureKey: 'serve' }] } },
      want: [
        { name: 'a', versions: [{ version: '1', path: '/a/x.onnx' }] },
        { name: 'b', versions: [{ version: '1', path: '/b/1' }], signatureKey: 'serve' },
      ],
    },
    {
      name: 'models.dir: sub-folders and model files are models, sorted by name',
      tree: ['/d/zeta/1/z.onnx', '/d/alpha/a.onnx', '/d/beta.onnx', '/d/readme.txt', '/d/.hidden/'],
      spec: { models: { dir: '/d' } },
      want: [
        { name: 'alpha', versions: [{ version: '1', path: '/d/alpha' }] },
        { name: 'beta', versions: [{ version: '1', path: '/d/beta.onnx' }] },
        { name: 'zeta', versions: [{ version: '1', path: '/d/zeta/1' }] },
      ],
    },
    {
      name: 'file:// URLs are local paths',
      tree: ['/m/iris.onnx'],
      spec: { modelPath: 'file:///m/iris.onnx' },
      want: [{ name: DEFAULT_MODEL_NAME, versions: [{ version: '1', path: '/m/iris.onnx' }] }],
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      assert.deepEqual(await locateModels(predictor(c.spec), treeFs(c.tree), rules), c.want);
    });
  }

  const errors: { name: string; tree: string[]; spec: Partial<PredictorSpec>; code: string; want: RegExp }[] = [
    { name: 'no model configured', tree: [], spec: {}, code: 'ENG_PREDICTOR_NO_MODEL', want: /onnx needs a model: set model_path or models/ },
    { name: 'missing path', tree: [], spec: { modelPath: '/nope.onnx' }, code: 'ENG_PREDICTOR_MODEL_MISSING', want: /\/nope.onnx does not exist/ },
    { name: 'remote URL', tree: [], spec: { modelPath: 's3://bucket/m/' }, code: 'ENG_PREDICTOR_MODEL_REMOTE', want: /remote URL/ },
    { name: 'empty models.dir', tree: ['/d/readme.txt'], spec: { models: { dir: '/d' } }, code: 'ENG_PREDICTOR_MODEL_MISSING', want: /holds no model/ },
  ];
  for (const c of errors) {
    test(`error: ${c.name}`, async () => {
      await assert.rejects(locateModels(predictor(c.spec), treeFs(c.tree), rules), (err: unknown) => err instanceof PredictorError && err.code === c.code && c.want.test(err.message));
    });
  }
});
