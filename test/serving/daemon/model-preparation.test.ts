import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { FsModelStore } from '../../../adapters/storage/fs/fs-model-store.js';
import type { ApiSpec } from '../../../core/config/api-spec.js';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import { ModelStoreRegistry } from '../../../core/contribution/model-store-registry.js';
import { ConfigError, type ConfigProblem } from '../../../core/errors.js';
import type { ModelDownloadProgress } from '../../../core/ports/model-provider.js';
import { ModelCache } from '../../../serving/models/model-cache.js';
import { StoreModelProvider } from '../../../serving/models/model-provider.js';
import {
  describeDownload,
  discoverApiModels,
  formatByteSize,
  prefetchModels,
  throttledProgress,
} from '../../../serving/daemon/model-preparation.js';
import { irisModel } from '../../harness/model-builders.js';
import { S3RVER_CREDENTIALS, spawnS3Server, type S3TestServer } from '../../harness/s3-server.js';
import { storeModelProvider } from '../../harness/store-model-provider.js';

// Deploy-time model preparation against a real S3-compatible server (s3rver in a child process), the
// real store adapters and the real machine cache in a temp folder. Specs come from the real loader.

let s3: S3TestServer;
let tmp: string;
const onnx = irisModel();

before(async () => {
  s3 = await spawnS3Server({ buckets: ['models'] });
  process.env.AWS_ENDPOINT_URL = s3.endpoint;
  process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey;
  process.env.AWS_REGION = 'us-east-1';
  await s3.put('models', 'iris/1/iris.onnx', onnx);
  await s3.put('models', 'iris/2/iris.onnx', onnx);
  await s3.put('models', 'notes/readme.txt', 'not a model\n');
  tmp = await mkdtemp(join(tmpdir(), 'myelin-model-prep-'));
});
after(async () => {
  await s3?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

let projects = 0;
/** A project folder with `cortex.yaml` (and predictor.py, a local model folder); its specs and text as the daemon loads them. */
async function project(yaml: string): Promise<{ specs: readonly ApiSpec[]; text: string; dir: string }> {
  const dir = join(tmp, `p${projects++}`);
  await mkdir(join(dir, 'model'), { recursive: true });
  await writeFile(join(dir, 'model', 'iris.onnx'), onnx);
  await writeFile(join(dir, 'predictor.py'), 'class PythonPredictor:\n    def __init__(self, config):\n        pass\n\n    def predict(self, payload):\n        return payload\n');
  await writeFile(join(dir, 'cortex.yaml'), yaml);
  const { specs } = await loadApiSpecsFromFile(join(dir, 'cortex.yaml'), { files: nodeProjectFileSystem });
  return { specs, text: yaml, dir };
}

async function refused(p: Promise<unknown>): Promise<readonly ConfigProblem[]> {
  const err = await p.then(
    () => assert.fail('expected the models to be refused'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConfigError, `want ConfigError, got ${String(err)}`);
  return err.problems;
}

describe('discoverApiModels: models that cannot be used refuse the deploy, naming file, API and field', () => {
  test('missing objects: one problem per API, at the field that names them, with the URL', async () => {
    const yaml = `- name: multi
  kind: RealtimeAPI
  predictor:
    type: onnx
    models:
      paths:
        - name: a
          path: s3://models/iris/
        - name: b
          path: s3://models/missing/
- name: single
  kind: RealtimeAPI
  predictor:
    type: onnx
    model_path: s3://models/nothing-here.onnx
`;
    const { specs, text } = await project(yaml);
    const problems = await refused(discoverApiModels({ specs, provider: storeModelProvider({ cacheRoot: join(tmp, 'c0') }), configFile: 'cortex.yaml', configText: text }));
    const got = problems.map((p) => ({ file: p.file, line: p.line, col: p.col, api: p.api, field: p.field, severity: p.severity }));
    assert.deepEqual(got, [
      { file: 'cortex.yaml', line: 10, col: 11, api: 'multi', field: 'predictor.models.paths[1].path', severity: 'error' },
      { file: 'cortex.yaml', line: 15, col: 5, api: 'single', field: 'predictor.model_path', severity: 'error' },
    ]);
    assert.equal(problems[0].message, 's3://models/missing/: model "b" was not found (nothing is stored at that path)');
    assert.match(problems[1].message, /^s3:\/\/models\/nothing-here\.onnx: the model was not found/);
  });

  test('a wrong layout: the message shows the tree the predictor type expects', async () => {
    const { specs, text } = await project('- name: notes\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    models:\n      path: s3://models/notes/\n');
    const [p, ...rest] = await refused(discoverApiModels({ specs, provider: storeModelProvider({ cacheRoot: join(tmp, 'c1') }), configFile: 'cortex.yaml', configText: text }));
    assert.deepEqual(rest, []);
    assert.deepEqual([p.api, p.field, p.line, p.col], ['notes', 'predictor.models.path', 6, 7]);
    assert.match(p.message, /^s3:\/\/models\/notes\/: the model is not a valid onnx model: no \*\.onnx file \(found: readme\.txt\); expected:\n {2}<model>\.onnx\n/);
  });

  test("Cortex 0.25's multi_model_reloading is named as written", async () => {
    const yaml = '- name: py\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n    multi_model_reloading:\n      dir: s3://models/none/\n';
    const { specs, text } = await project(yaml);
    const [p] = await refused(discoverApiModels({ specs, provider: storeModelProvider({ cacheRoot: join(tmp, 'c2') }), configFile: 'cortex.yaml', configText: text }));
    assert.deepEqual([p.field, p.line], ['predictor.multi_model_reloading.dir', 7]);
    assert.match(p.message, /^s3:\/\/models\/none\/: models\.dir was not found/);
  });

  test('without the text the problem is at line 1 col 1, the field still named', async () => {
    const { specs } = await project('- name: single\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    model_path: s3://models/gone.onnx\n');
    const [p] = await refused(discoverApiModels({ specs, provider: storeModelProvider({ cacheRoot: join(tmp, 'c3') }), configFile: 'cortex.yaml' }));
    assert.deepEqual([p.line, p.col, p.field], [1, 1, 'predictor.model_path']);
  });

  test('a bucket that refuses the credentials is ENG_MODEL_DENIED in words', async () => {
    const { specs, text } = await project('- name: single\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    model_path: s3://models/iris/\n');
    // s3rver refuses an access key id it does not know (403 InvalidAccessKeyId). The SDK reads the key
    // from the environment once, on the provider's first call.
    const saved = process.env.AWS_ACCESS_KEY_ID;
    process.env.AWS_ACCESS_KEY_ID = 'NOBODY';
    let problems: readonly ConfigProblem[];
    try {
      problems = await refused(discoverApiModels({ specs, provider: storeModelProvider({ cacheRoot: join(tmp, 'c4') }), configFile: 'cortex.yaml', configText: text }));
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved;
    }
    assert.equal(problems.length, 1);
    assert.equal(problems[0].field, 'predictor.model_path');
    assert.match(problems[0].message, /^s3:\/\/models\/iris\/: S3 refused access \(InvalidAccessKeyId/);
  });

  test('a scheme no loaded store serves (ENG_MODEL_SCHEME) names the URL and the known schemes', async () => {
    const { specs, text } = await project('- name: single\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    model_path: s3://models/iris/\n');
    const registry = new ModelStoreRegistry([new FsModelStore()]);
    const provider = new StoreModelProvider(registry, new ModelCache(registry, { root: join(tmp, 'c5'), log: pino({ level: 'silent' }) }));
    const [p] = await refused(discoverApiModels({ specs, provider, configFile: 'cortex.yaml', configText: text }));
    assert.equal(p.message, 's3://models/iris/: no model store for "s3" URLs (known: local paths and file://)');
  });

  test('the legacy dialect names its own field (model)', async () => {
    const { specs, text } = await project('- kind: api\n  name: old\n  model: s3://models/gone.onnx\n');
    const [p] = await refused(discoverApiModels({ specs, provider: storeModelProvider({ cacheRoot: join(tmp, 'c6') }), configFile: 'cortex.yaml', configText: text }));
    assert.deepEqual([p.field, p.line, p.col], ['model', 3, 3]);
  });

  test('usable models: every API with its tree, an API without models with none', async () => {
    const yaml = '- name: remote\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    models:\n      path: s3://models/iris/\n- name: code\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n';
    const { specs, text } = await project(yaml);
    const found = await discoverApiModels({ specs, provider: storeModelProvider({ cacheRoot: join(tmp, 'c7') }), configFile: 'cortex.yaml', configText: text });
    assert.deepEqual(found.get('remote')?.map((m) => [m.name, m.versions.map((v) => v.version)]), [['_cortex_default', ['1', '2']]]);
    assert.deepEqual(found.get('code'), []);
  });
});

describe('prefetchModels: every remote version into the machine cache, once', () => {
  const cached = async (root: string): Promise<string[]> => (await readdir(join(root, 'v1')).catch(() => [])).filter((n) => !n.startsWith('.'));

  test('downloads each version once, reporting throttled progress that ends done; a second run finds them cached', async () => {
    const root = join(tmp, 'prefetch');
    const provider = storeModelProvider({ cacheRoot: root });
    // Two APIs share the model: one download per version.
    const yaml = '- name: one\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    models:\n      path: s3://models/iris/\n- name: two\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    models:\n      path: s3://models/iris/\n';
    const { specs, text } = await project(yaml);
    const discovered = await discoverApiModels({ specs, provider, configFile: 'cortex.yaml', configText: text });
    const progress: Array<{ api: string; p: ModelDownloadProgress }> = [];
    const hits: string[] = [];
    // Time stands still: the throttle passes the first report of each version and its done one.
    const first = await prefetchModels({ specs, discovered, provider, configFile: 'cortex.yaml', now: () => 0, onProgress: (api, p) => progress.push({ api, p }), onCached: (_api, url) => hits.push(url) });
    assert.deepEqual(first, { downloaded: 2, cached: 0 });
    assert.equal(hits.length, 0, `no version was cached yet: ${hits.join(", ")}`);
    const urls = ['s3://models/iris/1/', 's3://models/iris/2/'];
    for (const url of urls) {
      const mine = progress.filter((e) => e.p.url === url);
      assert.ok(mine.length >= 1 && mine.length <= 2, `${url}: want 1-2 reports, got ${mine.length}`);
      const last = mine[mine.length - 1];
      assert.deepEqual({ api: last.api, done: last.p.done, bytes: last.p.bytes, total: last.p.total }, { api: 'one', done: true, bytes: onnx.byteLength, total: onnx.byteLength });
      assert.ok(mine.slice(0, -1).every((e) => !e.p.done));
    }
    assert.equal((await cached(root)).length, 2, 'two versions in the cache');
    for (const v of discovered.get('one')![0].versions) {
      assert.ok(existsSync(join(root, 'v1', ModelCache.key(v), 'iris.onnx')), `${v.url} is in the cache`);
    }

    const again: ModelDownloadProgress[] = [];
    const second = await prefetchModels({ specs, discovered, provider, configFile: 'cortex.yaml', now: () => 0, onProgress: (_api, p) => again.push(p), onCached: (_api, url) => hits.push(url) });
    assert.deepEqual(second, { downloaded: 0, cached: 2 });
    assert.deepEqual(again, []);
    assert.deepEqual([...hits].sort(), urls);
  });

  test('an API with model caching (cache_size) downloads nothing at deploy, as Cortex', async () => {
    const root = join(tmp, 'caching');
    const provider = storeModelProvider({ cacheRoot: root });
    const yaml = '- name: lazy\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    models:\n      path: s3://models/iris/\n      cache_size: 1\n      disk_cache_size: 2\n';
    const { specs, text } = await project(yaml);
    const discovered = await discoverApiModels({ specs, provider, configFile: 'cortex.yaml', configText: text });
    assert.equal(discovered.get('lazy')?.[0].versions.length, 2, 'still checked at deploy');
    const progress: ModelDownloadProgress[] = [];
    const got = await prefetchModels({ specs, discovered, provider, configFile: 'cortex.yaml', now: () => 0, onProgress: (_a, p) => progress.push(p) });
    assert.deepEqual(got, { downloaded: 0, cached: 0 });
    assert.deepEqual(progress, []);
    assert.deepEqual(await cached(root), []);
  });

  test('local model paths are checked but never copied', async () => {
    const root = join(tmp, 'local');
    const provider = storeModelProvider({ cacheRoot: root });
    const { specs, text } = await project('- name: here\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    models:\n      path: model/\n');
    const discovered = await discoverApiModels({ specs, provider, configFile: 'cortex.yaml', configText: text });
    assert.equal(discovered.get('here')?.[0].versions.length, 1);
    assert.deepEqual(await prefetchModels({ specs, discovered, provider, configFile: 'cortex.yaml', now: () => 0 }), { downloaded: 0, cached: 0 });
    assert.equal(existsSync(root), false, 'no cache folder was even created');
  });

  test('a version that is gone by download time is a problem of its API and field', async () => {
    const root = join(tmp, 'gone');
    const provider = storeModelProvider({ cacheRoot: root });
    await s3.put('models', 'fleeting/model.onnx', onnx);
    const { specs, text } = await project('- name: fleeting\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    model_path: s3://models/fleeting/\n');
    const discovered = await discoverApiModels({ specs, provider, configFile: 'cortex.yaml', configText: text });
    await s3.client.send(new (await import('@aws-sdk/client-s3')).DeleteObjectCommand({ Bucket: 'models', Key: 'fleeting/model.onnx' }));
    const [p, ...rest] = await refused(prefetchModels({ specs, discovered, provider, configFile: 'cortex.yaml', configText: text, now: () => 0 }));
    assert.deepEqual(rest, []);
    assert.deepEqual([p.api, p.field, p.line], ['fleeting', 'predictor.model_path', 5]);
    assert.match(p.message, /s3:\/\/models\/fleeting\//);
  });
});

describe('progress for people', () => {
  test('throttledProgress: the first report, then one per interval, and always the done one (once)', () => {
    let t = 0;
    const passed: number[] = [];
    const report = throttledProgress(() => t, 1000, (p) => passed.push(p.bytes));
    const at = (ms: number, bytes: number, done = false): void => {
      t = ms;
      report({ url: 'u', bytes, total: 100, rateBytesPerSec: 1, done });
    };
    at(0, 1);
    at(250, 2);
    at(999, 3);
    at(1000, 4);
    at(1250, 5);
    at(1400, 100, true);
    at(5000, 100, true);
    assert.deepEqual(passed, [1, 4, 100]);
  });

  const cases: ReadonlyArray<{ name: string; got: string; want: string }> = [
    { name: 'bytes', got: formatByteSize(512), want: '512 B' },
    { name: 'KiB', got: formatByteSize(1536), want: '1.5 KiB' },
    { name: 'MiB', got: formatByteSize(4 * 2 ** 20), want: '4.0 MiB' },
    { name: 'GiB', got: formatByteSize(3.25 * 2 ** 30), want: '3.3 GiB' },
    { name: 'a rate of 0', got: formatByteSize(0), want: '0 B' },
    {
      name: 'a download under way',
      got: describeDownload({ url: 's3://b/m/1/', bytes: 1.5 * 2 ** 20, total: 4 * 2 ** 20, rateBytesPerSec: 820 * 1024, done: false }),
      want: 's3://b/m/1/: 1.5 MiB of 4.0 MiB (37%, 820.0 KiB/s)',
    },
    { name: 'a download done', got: describeDownload({ url: 's3://b/m/1/', bytes: 4 * 2 ** 20, total: 4 * 2 ** 20, rateBytesPerSec: 2 ** 20, done: true }), want: 's3://b/m/1/: downloaded 4.0 MiB (1.0 MiB/s)' },
  ];
  for (const c of cases) test(c.name, () => assert.equal(c.got, c.want, `want ${c.want}, got ${c.got}`));
});
