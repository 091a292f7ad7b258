import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { FsModelStore } from '../../../adapters/storage/fs/fs-model-store.js';
import { ModelStoreError } from '../../../core/ports/model-store.js';

async function text(it: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts).toString();
}

describe('FsModelStore', () => {
  let dir: string;
  const store = new FsModelStore();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'myelin-fs-store-'));
    await mkdir(join(dir, 'm/1/variables'), { recursive: true });
    await mkdir(join(dir, 'm/2'), { recursive: true });
    await mkdir(join(dir, 'elsewhere'), { recursive: true });
    await writeFile(join(dir, 'm/1/saved_model.pb'), 'pb!');
    await writeFile(join(dir, 'm/1/variables/variables.index'), 'idx');
    await writeFile(join(dir, 'm/2/.hidden'), 'h');
    await writeFile(join(dir, 'elsewhere/model.onnx'), 'onnx-bytes');
    await symlink(join(dir, 'elsewhere'), join(dir, 'm/2/linked'));
    await symlink(join(dir, 'm'), join(dir, 'm/2/loop'));
    await symlink(join(dir, 'nowhere'), join(dir, 'm/2/dangling'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('lists a folder recursively, sorted, following links once per real folder, hidden files included', async () => {
    const got = await store.list(join(dir, 'm'));
    assert.deepEqual(
      got.map((o) => [o.key, o.size]),
      [
        ['1/saved_model.pb', 3],
        ['1/variables/variables.index', 3],
        ['2/.hidden', 1],
        ['2/linked/model.onnx', 10],
      ],
    );
    assert.ok(got.every((o) => typeof o.lastModified === 'number' && o.lastModified > 0));
  });

  const cases = [
    { name: 'a plain path to a file', url: () => join(dir, 'elsewhere/model.onnx') },
    { name: 'a file:// URL to a file', url: () => pathToFileURL(join(dir, 'elsewhere/model.onnx')).href },
  ];
  for (const c of cases) {
    test(`${c.name} is one object with key ''`, async () => {
      const got = await store.list(c.url());
      assert.deepEqual(got.map((o) => [o.key, o.size]), [['', 10]]);
      assert.equal(await text(await store.read(c.url(), got[0], { offset: 5 })), 'bytes');
    });
  }

  test('a missing path lists as []; reading a missing object is ENG_MODEL_NOT_FOUND', async () => {
    assert.deepEqual(await store.list(join(dir, 'missing/')), []);
    await assert.rejects(store.read(join(dir, 'm'), { key: 'nope', size: 1 }), (err) => err instanceof ModelStoreError && err.code === 'ENG_MODEL_NOT_FOUND' && err.message.includes('nope'));
  });

  test('reads an object below a folder URL (file://, trailing slash)', async () => {
    const url = `${pathToFileURL(join(dir, 'm')).href}/`;
    assert.equal(await text(await store.read(url, { key: '1/variables/variables.index', size: 3 })), 'idx');
  });
});
