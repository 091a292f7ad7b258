/**
 * The https store (https://, http://, public gs://) against a local HTTPS server with a self-signed
 * certificate (test/harness/https-server.ts), trusted through MYELIN_MODEL_CA_FILE; gs:// goes to the
 * server's fake of the GCS JSON API through MYELIN_GCS_ENDPOINT.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { HttpsModelStore, httpEtag } from '../../../adapters/storage/https/https-model-store.js';
import { ModelStoreError } from '../../../core/ports/model-store.js';
import { startHttpsServer, type HttpsTestServer } from '../../harness/https-server.js';

async function text(it: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts).toString();
}
const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const storeError = (code: string, ...parts: string[]) => (err: unknown) => {
  assert.ok(err instanceof ModelStoreError, String(err));
  assert.equal(err.code, code, err.message);
  for (const p of parts) assert.ok(err.message.includes(p), `want "${p}" in: ${err.message}`);
  return true;
};

describe('HttpsModelStore', () => {
  let server: HttpsTestServer;
  let store: HttpsModelStore;
  before(async () => {
    server = await startHttpsServer();
    await server.add('/models/iris.onnx', 'iris-model-bytes');
    await server.add('/models/md5.onnx', 'content-md5', { etag: '"abc-123"', contentMd5: true });
    await server.add('/models/weak.onnx', 'weak', { etag: `W/"${md5('weak')}"` });
    await server.add('/models/nohead.onnx', 'no-head-here');
    server.refuseHead('/models/nohead.onnx');
    server.answer('/models/secret.onnx', 403);
    server.answer('/models/moved.onnx', 302, { location: '/models/iris.onnx' });
    await server.add('/bucket-a/models/iris/1/model.onnx', 'gcs-v1');
    await server.add('/bucket-a/models/iris/2/model.onnx', 'gcs-version-2');
    await server.add('/bucket-a/models/iris/2/my labels.txt', 'a b c');
    await server.add('/bucket-a/models/iris-other/model.onnx', 'sibling');
    await server.add('/bucket-a/single/iris.onnx', 'gcs-single');
    store = new HttpsModelStore({ env: { MYELIN_MODEL_CA_FILE: server.caFile, MYELIN_GCS_ENDPOINT: server.origin } });
  });
  after(async () => {
    await store.close();
    await server.close();
  });

  test('a file: HEAD gives size, ETag, MD5 (from the ETag) and Last-Modified; read resumes with Range', async () => {
    const url = server.url('/models/iris.onnx');
    const got = await store.list(url);
    assert.equal(got.length, 1);
    assert.deepEqual({ key: got[0].key, size: got[0].size, md5: got[0].md5, etag: got[0].etag }, { key: '', size: 16, md5: md5('iris-model-bytes'), etag: md5('iris-model-bytes') });
    assert.ok((got[0].lastModified ?? 0) > 0);
    assert.equal(await text(await store.read(url, got[0])), 'iris-model-bytes');
    assert.equal(await text(await store.read(url, got[0], { offset: 5 })), 'model-bytes');
    assert.ok(server.requests.some((r) => r.method === 'GET' && r.path === '/models/iris.onnx' && r.range === 'bytes=5-'));
  });

  test('Content-MD5 gives the MD5 when the ETag is not one; a weak ETag never does', async () => {
    const [a] = await store.list(server.url('/models/md5.onnx'));
    assert.deepEqual([a.etag, a.md5], ['abc-123', md5('content-md5')]);
    const [w] = await store.list(server.url('/models/weak.onnx'));
    assert.equal(w.md5, undefined);
  });

  test('HEAD refused: falls back to GET with Range: bytes=0-0', async () => {
    const got = await store.list(server.url('/models/nohead.onnx'));
    assert.deepEqual(got.map((o) => [o.key, o.size, o.md5]), [['', 12, md5('no-head-here')]]);
    assert.ok(server.requests.some((r) => r.method === 'GET' && r.path === '/models/nohead.onnx' && r.range === 'bytes=0-0'));
  });

  test('follows redirects', async () => {
    const got = await store.list(server.url('/models/moved.onnx'));
    assert.equal(got[0].size, 16);
  });

  test('404 lists as []; 403 is ENG_MODEL_DENIED; a folder URL cannot be listed; all name the URL', async () => {
    assert.deepEqual(await store.list(server.url('/models/absent.onnx')), []);
    await assert.rejects(store.list(server.url('/models/secret.onnx')), storeError('ENG_MODEL_DENIED', server.url('/models/secret.onnx'), '403'));
    await assert.rejects(store.read(server.url('/models/secret.onnx'), { key: '', size: 1 }), storeError('ENG_MODEL_DENIED', server.url('/models/secret.onnx')));
    await assert.rejects(store.read(server.url('/models/absent.onnx'), { key: '', size: 1 }), storeError('ENG_MODEL_NOT_FOUND', server.url('/models/absent.onnx')));
    await assert.rejects(store.list(server.url('/models/')), storeError('ENG_MODEL_STORE', server.url('/models/'), 'cannot be listed over plain HTTP'));
  });

  test('an untrusted certificate (no MYELIN_MODEL_CA_FILE) fails naming the URL', async () => {
    const untrusting = new HttpsModelStore({ env: {} });
    try {
      await assert.rejects(untrusting.list(server.url('/models/iris.onnx')), storeError('ENG_MODEL_STORE', server.url('/models/iris.onnx'), 'certificate'));
    } finally {
      await untrusting.close();
    }
  });

  test('gs:// prefix: the JSON API listing, paged, keys relative, md5Hash as hex, no sibling prefix', async () => {
    server.gcsPageSize = 2;
    try {
      for (const url of ['gs://bucket-a/models/iris/', 'gs://bucket-a/models/iris']) {
        const got = await store.list(url);
        assert.deepEqual(
          got.map((o) => [o.key, o.size, o.md5]),
          [
            ['1/model.onnx', 6, md5('gcs-v1')],
            ['2/model.onnx', 13, md5('gcs-version-2')],
            ['2/my labels.txt', 5, md5('a b c')],
          ],
          url,
        );
        assert.ok(got.every((o) => (o.lastModified ?? 0) > 0 && o.etag));
      }
      assert.ok(server.requests.some((r) => r.path === '/storage/v1/b/bucket-a/o'), 'listing requests');
    } finally {
      server.gcsPageSize = 1000;
    }
  });

  test('gs:// object: itself with key ""; reads (URL-encoded names, Range) from {base}/<bucket>/<object>', async () => {
    const single = await store.list('gs://bucket-a/single/iris.onnx');
    assert.deepEqual(single.map((o) => [o.key, o.size, o.md5]), [['', 10, md5('gcs-single')]]);
    assert.equal(await text(await store.read('gs://bucket-a/single/iris.onnx', single[0], { offset: 4 })), 'single');
    const labels = (await store.list('gs://bucket-a/models/iris/')).find((o) => o.key === '2/my labels.txt')!;
    assert.equal(await text(await store.read('gs://bucket-a/models/iris/', labels, { offset: 2 })), 'b c');
    assert.ok(server.requests.some((r) => r.method === 'GET' && r.path === '/bucket-a/models/iris/2/my%20labels.txt' && r.range === 'bytes=2-'));
  });

  test('gs:// missing bucket: ENG_MODEL_NOT_FOUND naming the bucket; missing prefix: []', async () => {
    await assert.rejects(store.list('gs://no-bucket/models/'), storeError('ENG_MODEL_NOT_FOUND', 'gs://no-bucket/models/', 'bucket "no-bucket"'));
    assert.deepEqual(await store.list('gs://bucket-a/absent/'), []);
  });
});

describe('httpEtag', () => {
  const cases = [
    { name: 'a strong 32-hex ETag is the MD5', etag: '"0123456789abcdef0123456789ABCDEF"', md5: undefined, want: { etag: '0123456789abcdef0123456789ABCDEF', md5: '0123456789abcdef0123456789abcdef' } },
    { name: 'a weak one is not', etag: 'W/"0123456789abcdef0123456789abcdef"', md5: undefined, want: { etag: 'W/0123456789abcdef0123456789abcdef' } },
    { name: 'Content-MD5 wins', etag: '"x-1"', md5: Buffer.from(md5('a'), 'hex').toString('base64'), want: { etag: 'x-1', md5: md5('a') } },
    { name: 'nothing', etag: undefined, md5: undefined, want: {} },
  ];
  for (const c of cases) test(c.name, () => assert.deepEqual(httpEtag(c.etag, c.md5), c.want));
});
