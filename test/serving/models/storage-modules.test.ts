/**
 * The model storage wiring: `storageModules` + `modelProviderModule` in a container, `ModelProvider`
 * discovering and fetching models from s3 (s3rver in a child process) and from local paths, the
 * registry's scheme errors, and that the S3 SDK is loaded only on the first s3:// call.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { Container } from 'inversify';
import { pino } from 'pino';
import { ModelStoreRegistry } from '../../../core/contribution/model-store-registry.js';
import { ModelProvider } from '../../../core/ports/model-provider.js';
import { ModelStoreError, type ModelStoreContribution } from '../../../core/ports/model-store.js';
import { modelProviderModule, storageModules } from '../../../serving/models/storage-modules.js';
import { apiSpecFixture } from '../../harness/api-spec-fixture.js';
import { S3RVER_CREDENTIALS, spawnS3Server, type S3TestServer } from '../../harness/s3-server.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ENV_KEYS = ['AWS_ENDPOINT_URL', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_EC2_METADATA_DISABLED', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_CONFIG_FILE'];
const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));

describe('storage modules and StoreModelProvider', () => {
  let s3: S3TestServer;
  let dir: string;
  let container: Container;
  before(async () => {
    s3 = await spawnS3Server({ buckets: ['models'] });
    await s3.put('models', 'onnx/iris/1/model.onnx', 'iris-v1');
    await s3.put('models', 'onnx/iris/2/model.onnx', 'iris-v2');
    await s3.put('models', 'onnx/resnet.onnx', 'resnet');
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: s3.endpoint,
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/myelin-test',
      AWS_CONFIG_FILE: '/nonexistent/myelin-test',
    });
    dir = await mkdtemp(join(tmpdir(), 'myelin-storage-modules-'));
    await mkdir(join(dir, 'local/3'), { recursive: true });
    await writeFile(join(dir, 'local/3/model.onnx'), 'local-v3');
    container = new Container();
    await container.load(...storageModules, modelProviderModule({ cacheRoot: join(dir, 'cache'), log: pino({ level: 'silent' }) }));
  });
  after(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('discovers an s3 models.dir and downloads a version into the cache', async () => {
    const provider = container.get<ModelProvider>(ModelProvider);
    const tree = await provider.discover(apiSpecFixture({ predictor: { type: 'onnx', models: { dir: 's3://models/onnx/' } } }).predictor);
    assert.deepEqual(
      tree.map((m) => [m.name, m.versions.map((v) => v.version)]),
      [
        ['iris', ['1', '2']],
        ['resnet', ['1']],
      ],
    );
    const latest = tree[0].versions.at(-1)!;
    const local = await provider.localVersion(latest);
    assert.equal(local.hit, false);
    assert.ok(local.path.startsWith(join(dir, 'cache', 'v1')));
    assert.equal(await readFile(join(local.path, 'model.onnx'), 'utf8'), 'iris-v2');
    const single = await provider.localVersion(tree[1].versions[0]);
    assert.ok(single.path.endsWith('/resnet.onnx'));
    assert.equal(await readFile(single.path, 'utf8'), 'resnet');
    assert.equal((await provider.localVersion(latest)).hit, true);
    await provider.dropLocalVersion(latest);
    assert.equal((await provider.localVersion(latest)).hit, false);
  });

  test('a local model is discovered and served in place', async () => {
    const provider = container.get<ModelProvider>(ModelProvider);
    const tree = await provider.discover(apiSpecFixture({ predictor: { type: 'onnx', modelPath: join(dir, 'local') } }).predictor);
    const v = tree[0].versions[0];
    assert.equal(v.version, '3');
    assert.deepEqual(await provider.localVersion(v), { path: `${join(dir, 'local')}/3/`, hit: true, bytes: 8 });
  });

  test('an unknown scheme is ENG_MODEL_SCHEME naming the URL and the known schemes', async () => {
    const registry = container.get(ModelStoreRegistry);
    assert.deepEqual(registry.schemes(), ['file', 'gs', 'http', 'https', 's3']);
    assert.throws(() => registry.get('ftp://host/m.onnx'), (err) => err instanceof ModelStoreError && err.code === 'ENG_MODEL_SCHEME' && err.message.includes('ftp://host/m.onnx') && err.message.includes('s3://') && err.message.includes('gs://'));
    const provider = container.get<ModelProvider>(ModelProvider);
    await assert.rejects(provider.discover(apiSpecFixture({ predictor: { type: 'onnx', modelPath: 'ftp://host/m.onnx' } }).predictor), (err) => err instanceof ModelStoreError && err.code === 'ENG_MODEL_SCHEME');
  });

  test('a scheme contributed twice is rejected', () => {
    const fake = (kind: string): ModelStoreContribution => ({ kind, schemes: ['s3'], list: async () => [], read: async () => (async function* () {})() });
    assert.throws(() => new ModelStoreRegistry([fake('a'), fake('b')]), /"s3" is registered twice/);
  });

  test('the S3 SDK is loaded only on the first s3:// call', async () => {
    const imp = (p: string): string => JSON.stringify(new URL(p, `file://${ROOT}`).href);
    const script = [
      `import { createRequire } from 'node:module';`,
      `import { Container } from 'inversify';`,
      `import { pino } from 'pino';`,
      `import { ModelStoreRegistry } from ${imp('core/contribution/model-store-registry.ts')};`,
      `import { modelProviderModule, storageModules } from ${imp('serving/models/storage-modules.ts')};`,
      `const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('@aws-sdk/client-s3'));`,
      `const c = new Container();`,
      `await c.load(...storageModules, modelProviderModule({ cacheRoot: process.argv[1], log: pino({ level: 'silent' }) }));`,
      `const r = c.get(ModelStoreRegistry);`,
      `await r.list(process.argv[2]);`,
      `const before = loaded();`,
      `await r.list('s3://models/onnx/');`,
      `console.log(JSON.stringify({ before, after: loaded() }));`,
    ].join('\n');
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, join(dir, 'cache2'), join(dir, 'local')], { cwd: ROOT, env: process.env });
    assert.deepEqual(JSON.parse(stdout.trim().split('\n').at(-1)!), { before: false, after: true });
  });
});
