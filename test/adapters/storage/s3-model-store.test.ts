/**
 * The s3 store against a real S3-compatible server (s3rver 3.7 on loopback in a child process, test/harness/s3-server.ts),
 * configured the standard way: AWS_ENDPOINT_URL, the SDK's credential chain from the environment.
 * s3rver serves unsigned requests on every bucket (it has no ACLs), so "anonymous" here shows that the
 * store finds no credentials, switches to unsigned requests and reads a public bucket; that a private
 * bucket refuses them cannot be shown with s3rver. It refuses an unknown access key id (403), which is
 * the "denied" case.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, afterEach, before, describe, test } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { S3ModelStore, s3Etag } from '../../../adapters/storage/s3/s3-model-store.js';
import { ModelStoreError } from '../../../core/ports/model-store.js';
import { S3RVER_CREDENTIALS, spawnS3Server, type S3TestServer } from '../../harness/s3-server.js';

const ENV_KEYS = ['AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_REGION', 'AWS_EC2_METADATA_DISABLED', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_CONFIG_FILE', 'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_WEB_IDENTITY_TOKEN_FILE'];
const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));

/** The process environment for one case: the endpoint, no shared files, no instance metadata (no host but 127.0.0.1). */
function setEnv(endpoint: string, credentials?: { accessKeyId: string; secretAccessKey: string }): void {
  for (const k of ENV_KEYS) delete process.env[k];
  process.env.AWS_ENDPOINT_URL = endpoint;
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/myelin-test-credentials';
  process.env.AWS_CONFIG_FILE = '/nonexistent/myelin-test-config';
  if (credentials) {
    process.env.AWS_ACCESS_KEY_ID = credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = credentials.secretAccessKey;
  }
}

async function bytes(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

describe('S3ModelStore against s3rver', () => {
  let s3: S3TestServer;
  const stores: S3ModelStore[] = [];
  const newStore = (options?: ConstructorParameters<typeof S3ModelStore>[0]): S3ModelStore => {
    const s = new S3ModelStore(options);
    stores.push(s);
    return s;
  };

  before(async () => {
    s3 = await spawnS3Server({ buckets: ['models', 'public'] });
    await s3.put('models', 'iris/1/model.onnx', 'onnx-v1');
    await s3.put('models', 'iris/2/model.onnx', 'onnx-version-2');
    await s3.put('models', 'iris-other/model.onnx', 'not-iris');
    await s3.put('models', 'single/iris.onnx', 'single-file');
    await s3.client.send(new PutObjectCommand({ Bucket: 'models', Key: 'iris/2/', Body: '' })); // a console "folder"
    for (let i = 0; i < 5; i++) await s3.put('models', `many/f${i}.bin`, `file ${i}`);
    await s3.put('public', 'tf/saved_model.pb', 'pb-bytes');
  });
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });
  after(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await s3.close();
  });

  test('lists a prefix (with or without its /): keys relative, sorted, sizes, MD5 ETags, no folder markers, nothing from a sibling prefix', async () => {
    setEnv(s3.endpoint, S3RVER_CREDENTIALS);
    const store = newStore();
    for (const url of ['s3://models/iris/', 's3://models/iris']) {
      const got = await store.list(url);
      assert.deepEqual(
        got.map((o) => [o.key, o.size, o.md5]),
        [
          ['1/model.onnx', 7, md5('onnx-v1')],
          ['2/model.onnx', 14, md5('onnx-version-2')],
        ],
        url,
      );
      assert.ok(got.every((o) => o.etag === o.md5 && (o.lastModified ?? 0) > 0));
    }
  });

  test('pages through ListObjectsV2 (continuation tokens)', async () => {
    setEnv(s3.endpoint, S3RVER_CREDENTIALS);
    const got = await newStore({ maxKeysPerPage: 2 }).list('s3://models/many/');
    assert.deepEqual(got.map((o) => o.key), ['f0.bin', 'f1.bin', 'f2.bin', 'f3.bin', 'f4.bin']);
  });

  test('a URL naming an object is that object, key ""; read resumes from an offset', async () => {
    setEnv(s3.endpoint, S3RVER_CREDENTIALS);
    const store = newStore();
    const got = await store.list('s3://models/single/iris.onnx');
    assert.deepEqual(got.map((o) => [o.key, o.size, o.md5]), [['', 11, md5('single-file')]]);
    assert.equal((await bytes(await store.read('s3://models/single/iris.onnx', got[0]))).toString(), 'single-file');
    assert.equal((await bytes(await store.read('s3://models/single/iris.onnx', got[0], { offset: 7 }))).toString(), 'file');
    assert.equal((await bytes(await store.read('s3://models/single/iris.onnx', got[0], { offset: 11 }))).length, 0);
    const v2 = (await store.list('s3://models/iris/')).find((o) => o.key === '2/model.onnx')!;
    assert.equal((await bytes(await store.read('s3://models/iris/', v2, { offset: 5 }))).toString(), 'version-2');
  });

  test('without any credentials it sends unsigned requests and reads a public bucket', async () => {
    setEnv(s3.endpoint);
    const store = newStore();
    const got = await store.list('s3://public/tf/');
    assert.equal(await store.isAnonymous(), true);
    assert.deepEqual(got.map((o) => [o.key, o.size]), [['saved_model.pb', 8]]);
    assert.equal((await bytes(await store.read('s3://public/tf/', got[0]))).toString(), 'pb-bytes');
  });

  test('with credentials it signs (not anonymous)', async () => {
    setEnv(s3.endpoint, S3RVER_CREDENTIALS);
    const store = newStore();
    await store.list('s3://public/tf/');
    assert.equal(await store.isAnonymous(), false);
  });

  test('wrong credentials: ENG_MODEL_DENIED naming the URL, for list and read', async () => {
    setEnv(s3.endpoint, { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'nope' });
    const store = newStore();
    const denied = (url: string) => (err: unknown) => {
      assert.ok(err instanceof ModelStoreError, String(err));
      assert.equal(err.code, 'ENG_MODEL_DENIED');
      assert.match(err.message, new RegExp(url.replace(/[/.]/g, '\\$&')));
      assert.match(err.message, /InvalidAccessKeyId/);
      return true;
    };
    await assert.rejects(store.list('s3://models/iris/'), denied('s3://models/iris/'));
    await assert.rejects(store.list('s3://models/single/iris.onnx'), denied('s3://models/single/iris.onnx'));
    await assert.rejects(store.read('s3://models/single/iris.onnx', { key: '', size: 11 }), denied('s3://models/single/iris.onnx'));
  });

  test('a missing bucket is ENG_MODEL_NOT_FOUND naming the bucket; a missing key lists as [] and reads as ENG_MODEL_NOT_FOUND', async () => {
    setEnv(s3.endpoint, S3RVER_CREDENTIALS);
    const store = newStore();
    for (const url of ['s3://no-such-bucket/models/', 's3://no-such-bucket/iris.onnx']) {
      await assert.rejects(store.list(url), (err) => err instanceof ModelStoreError && err.code === 'ENG_MODEL_NOT_FOUND' && err.message.includes('bucket "no-such-bucket"') && err.message.includes(url));
    }
    assert.deepEqual(await store.list('s3://models/absent/'), []);
    assert.deepEqual(await store.list('s3://models/absent.onnx'), []);
    await assert.rejects(store.read('s3://models/absent.onnx', { key: '', size: 3 }), (err) => err instanceof ModelStoreError && err.code === 'ENG_MODEL_NOT_FOUND' && err.message.includes('s3://models/absent.onnx'));
  });

  test('an endpoint nobody listens on: ENG_MODEL_STORE naming the URL and the endpoint', async () => {
    setEnv('http://127.0.0.1:9', S3RVER_CREDENTIALS);
    const store = newStore();
    await assert.rejects(store.list('s3://models/iris/'), (err) => err instanceof ModelStoreError && err.code === 'ENG_MODEL_STORE' && err.message.includes('s3://models/iris/') && err.message.includes('127.0.0.1:9'));
  });
});

describe('s3Etag', () => {
  const cases = [
    { name: 'single-part: the MD5', raw: '"5d41402abc4b2a76b9719d911017c592"', want: { etag: '5d41402abc4b2a76b9719d911017c592', md5: '5d41402abc4b2a76b9719d911017c592' } },
    { name: 'multipart: no MD5', raw: '"d41d8cd98f00b204e9800998ecf8427e-3"', want: { etag: 'd41d8cd98f00b204e9800998ecf8427e-3' } },
    { name: 'absent', raw: undefined, want: {} },
  ];
  for (const c of cases) test(c.name, () => assert.deepEqual(s3Etag(c.raw), c.want));
});
