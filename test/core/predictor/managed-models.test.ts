import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { PredictorSpec } from '../../../core/config/api-spec.js';
import { HttpError } from '../../../core/errors.js';
import { ManagedModels } from '../../../core/predictor/managed-models.js';
import { ModelDirectory, type ModelChange } from '../../../core/predictor/model-directory.js';
import { modelFormatOf } from '../../../core/predictor/model-tree.js';
import { S3RVER_CREDENTIALS, startS3Server, type S3TestServer } from '../../harness/s3-server.js';
import { storeModelProvider } from '../../harness/store-model-provider.js';

const log = pino({ level: 'silent' });
/** A "model" is the text of its model.txt: loading reads it from the local copy. */
interface TextModel {
  readonly text: string;
  released: boolean;
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-managed-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeVersion(model: string, version: string, text: string): Promise<void> {
  await mkdir(join(dir, model, version), { recursive: true });
  await writeFile(join(dir, model, version, 'model.txt'), text);
}

function spec(models: PredictorSpec['models']): PredictorSpec {
  return { type: 'python', env: {}, models } as unknown as PredictorSpec;
}

async function open(models: PredictorSpec['models'], cacheSize?: number, provider = storeModelProvider({ log })) {
  const predictor = spec(models);
  const directory = await ModelDirectory.open({ predictor, provider, format: modelFormatOf('python'), pollMs: 0, log, ...(models?.diskCacheSize ? { diskCacheSize: models.diskCacheSize } : {}) });
  const loads: string[] = [];
  const released: TextModel[] = [];
  const mm = await ManagedModels.open<TextModel>({
    directory,
    ...(cacheSize !== undefined ? { cacheSize } : {}),
    log,
    async load(path, sel) {
      loads.push(`${sel.name}@${sel.version}`);
      return { text: await readFile(join(path, 'model.txt'), 'utf8'), released: false };
    },
    async release(m) {
      m.released = true;
      released.push(m);
    },
  });
  return { mm, directory, loads, released };
}

describe('ManagedModels without cache_size (Cortex live reloading)', () => {
  test('every version is loaded at open; requests hit; names and versions follow Cortex', async () => {
    await writeVersion('a', '1', 'a1');
    await writeVersion('a', '2', 'a2');
    await writeVersion('b', '1', 'b1');
    const { mm, loads } = await open({ dir });
    assert.deepEqual(loads.sort(), ['a@1', 'a@2', 'b@1']);
    const lease = await mm.acquire('a');
    assert.deepEqual([lease.version, lease.model.text], ['2', 'a2']);
    lease.release();
    assert.equal((await mm.acquire('a', '1')).model.text, 'a1');
    await assert.rejects(mm.acquire(), (e: unknown) => e instanceof HttpError && e.status === 400 && /choose one of: a, b/.test(e.message));
    await assert.rejects(mm.acquire('c'), (e: unknown) => e instanceof HttpError && e.status === 404 && /models: a, b/.test(e.message));
    await assert.rejects(mm.acquire('a', '9'), (e: unknown) => e instanceof HttpError && e.status === 404 && /versions: 1, 2/.test(e.message));
    await assert.rejects(mm.acquire('a', 'v2'), (e: unknown) => e instanceof HttpError && e.status === 400);
    const s = mm.stats();
    assert.deepEqual([s.loads, s.misses, s.evictions, s.inMemory], [3, 3, 0, 3]);
    assert.ok(s.hits >= 2);
    await mm.close();
    await rm(join(dir, 'a'), { recursive: true });
    await rm(join(dir, 'b'), { recursive: true });
  });

  test('a version added while serving is loaded; a removed one is unloaded once its last lease ends', async () => {
    await writeVersion('m', '1', 'm1');
    const { mm, directory, released } = await open({ paths: [{ name: 'm', path: join(dir, 'm') }] });
    const changes: ModelChange[] = [];
    directory.onDidChange((c) => changes.push(c));
    const held = await mm.acquire('m', '1');
    await writeVersion('m', '2', 'm2');
    await rm(join(dir, 'm', '1'), { recursive: true });
    await directory.poll();
    assert.deepEqual(changes, [
      { model: 'm', version: '1', change: 'removed' },
      { model: 'm', version: '2', change: 'added' },
    ]);
    // The running prediction keeps its model; new requests see version 2 only.
    assert.equal(held.model.released, false);
    await assert.rejects(mm.acquire('m', '1'), (e: unknown) => e instanceof HttpError && e.status === 404);
    const latest = await mm.acquire('m');
    assert.deepEqual([latest.version, latest.model.text], ['2', 'm2']);
    latest.release();
    held.release();
    await waitFor(() => held.model.released);
    assert.deepEqual(released.map((m) => m.text), ['m1']);
    await mm.close();
    await rm(join(dir, 'm'), { recursive: true });
  });
});

describe('ManagedModels with cache_size', () => {
  test('nothing loads at open; LRU beyond cache_size is unloaded; a leased model is never evicted', async () => {
    for (const n of ['x', 'y', 'z']) await writeVersion(n, '1', n);
    const { mm, loads, released } = await open({ dir, cacheSize: 1, diskCacheSize: 3 }, 2);
    assert.deepEqual(loads, []);
    const x = await mm.acquire('x');
    const y = await mm.acquire('y');
    const z = await mm.acquire('z');
    // All three are in use: the limit waits for their leases.
    assert.equal(mm.stats().inMemory, 3);
    assert.equal(released.length, 0);
    x.release();
    await waitFor(() => released.length === 1);
    assert.equal(released[0].text, 'x');
    y.release();
    z.release();
    assert.equal(mm.stats().inMemory, 2);
    // x comes back (a miss), y is now the least recently used.
    (await mm.acquire('x')).release();
    await waitFor(() => released.length === 2);
    assert.equal(released[1].text, 'y');
    const s = mm.stats();
    assert.deepEqual([s.misses, s.loads, s.evictions], [4, 4, 2]);
    await mm.close();
  });

  test('concurrent requests over more models than cache_size all answer with their own model', async () => {
    const { mm } = await open({ dir, cacheSize: 1, diskCacheSize: 3 }, 1);
    const names = ['x', 'y', 'z'];
    let maxLoaded = 0;
    const answers = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const lease = await mm.acquire(names[i % 3]);
        maxLoaded = Math.max(maxLoaded, mm.stats().inMemory);
        await new Promise((r) => setImmediate(r));
        const text = lease.model.text;
        assert.equal(lease.model.released, false);
        lease.release();
        return text;
      }),
    );
    assert.deepEqual(answers, Array.from({ length: 60 }, (_, i) => names[i % 3]));
    assert.ok(maxLoaded <= 3);
    await waitFor(() => mm.stats().inMemory <= 1);
    await mm.close();
  });
});

describe('ManagedModels eviction while unloads are slow', () => {
  test('an eviction resuming after a slow unload never drops a version reloaded meanwhile', async () => {
    for (const n of ['a', 'b', 'c']) await writeVersion(`slow/${n}`, '1', n);
    const predictor = spec({ dir: join(dir, 'slow'), cacheSize: 1, diskCacheSize: 3 });
    const directory = await ModelDirectory.open({ predictor, provider: storeModelProvider({ log }), format: modelFormatOf('python'), pollMs: 0, log });
    const live = new Set<object>();
    // Each release waits until the test lets it finish.
    const pending = new Map<string, () => void>();
    const mm = await ManagedModels.open<{ name: string }>({
      directory,
      cacheSize: 1,
      log,
      async load(_path, sel) {
        const m = { name: sel.name };
        live.add(m);
        return m;
      },
      release(m) {
        return new Promise<void>((resolve) =>
          pending.set(m.name, () => {
            live.delete(m);
            resolve();
          }),
        );
      },
    });
    const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
    const a = await mm.acquire('a');
    const b = await mm.acquire('b');
    const c = await mm.acquire('c');
    a.release(); // eviction 1: unloads a, waits for its release, will then look at b
    await tick();
    b.release(); // eviction 2: unloads b (waits)
    await tick();
    const b2 = await mm.acquire('b'); // b is loaded again while the old copy's release is pending
    pending.get('a')!(); // eviction 1 resumes with its old list
    pending.get('b')!();
    for (let i = 0; i < 5; i++) await tick();
    b2.release();
    c.release();
    for (let i = 0; i < 5; i++) await tick();
    for (const [, finish] of pending) finish();
    for (let i = 0; i < 5; i++) await tick();
    // One version in memory, and it is the one stats and info count.
    assert.equal(live.size, mm.stats().inMemory);
    assert.equal(live.size, 1);
    const loaded = mm.info().filter((m) => m.versions[0].state === 'loaded').map((m) => m.name);
    assert.deepEqual(loaded, [...live].map((m) => (m as { name: string }).name));
    await mm.close();
    for (const [, finish] of pending) finish();
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(live.size, 0);
  });
});

describe('ModelDirectory disk cache over S3', () => {
  let s3: S3TestServer;
  before(async () => {
    s3 = await startS3Server({ buckets: ['models'] });
    for (const n of ['p', 'q', 'r']) await s3.put('models', `zoo/${n}/1/model.txt`, `remote ${n}`);
  });
  after(async () => {
    await s3.close();
  });

  test('disk_cache_size keeps the most recently used versions on disk and drops the others', async () => {
    const cacheRoot = await mkdtemp(join(tmpdir(), 'myelin-managed-cache-'));
    const env = { AWS_ENDPOINT_URL: s3.endpoint, AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1' };
    const provider = storeModelProvider({ log, cacheRoot, env });
    const { mm, directory } = await open({ dir: 's3://models/zoo/', cacheSize: 1, diskCacheSize: 2 }, 1, provider);
    for (const n of ['p', 'q', 'r']) {
      const lease = await mm.acquire(n);
      assert.equal(lease.model.text, `remote ${n}`);
      lease.release();
    }
    assert.equal(directory.onDiskCount(), 2);
    assert.equal(directory.diskEvictions(), 1);
    assert.equal(mm.stats().diskEvictions, 1);
    // p was dropped from disk: asking again downloads it again and still answers.
    assert.equal((await mm.acquire('p')).model.text, 'remote p');
    await mm.close();
    await rm(cacheRoot, { recursive: true, force: true });
  });
});

describe('ModelDirectory pins', () => {
  test('a pinned disk copy (a Python load reading it) outlives disk_cache_size until unpinned', async () => {
    const s3 = await startS3Server({ buckets: ['pins'] });
    try {
      for (const v of ['1', '2']) await s3.put('pins', `m/${v}/model.txt`, `v${v}`);
      const cacheRoot = await mkdtemp(join(tmpdir(), 'myelin-pin-cache-'));
      const env = { AWS_ENDPOINT_URL: s3.endpoint, AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1' };
      const provider = storeModelProvider({ log, cacheRoot, env });
      const directory = await ModelDirectory.open({ predictor: spec({ path: 's3://pins/m/' }), provider, format: modelFormatOf('python'), pollMs: 0, diskCacheSize: 1, log });
      const [v1, v2] = directory.models()[0].versions;
      const unpin = directory.pin(v1);
      const first = await directory.local(v1);
      await directory.local(v2);
      assert.equal(await readFile(join(first.path, 'model.txt'), 'utf8'), 'v1', 'still on disk while pinned');
      assert.equal(directory.diskEvictions(), 0);
      unpin();
      await waitFor(() => directory.diskEvictions() === 1);
      directory.close();
      await rm(cacheRoot, { recursive: true, force: true });
    } finally {
      await s3.close();
    }
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('ManagedModels.acquireLoaded (the prediction fast path)', () => {
  test('a version in memory is leased without a promise; one to load, or after close, is not', async () => {
    await writeVersion('fast', '1', 'f1');
    const { mm, directory } = await open({ dir: join(dir) }, 1);
    assert.equal(mm.acquireLoaded('fast'), undefined, 'not loaded yet (cache_size 1): undefined, acquire loads it');
    (await mm.acquire('fast')).release();
    const lease = mm.acquireLoaded('fast');
    assert.ok(lease, 'loaded: a lease at once');
    assert.deepEqual([lease.name, lease.version, lease.model.text], ['fast', '1', 'f1']);
    lease.release();
    lease.release(); // idempotent
    assert.throws(() => mm.acquireLoaded('nope'), (e: unknown) => e instanceof HttpError && e.status === 404);
    // A poll lists the same content again as new objects: still served at once, the same model.
    await directory.poll();
    const again = mm.acquireLoaded('fast');
    assert.equal(again?.model.text, 'f1');
    again?.release();
    await mm.close();
    assert.throws(() => mm.acquireLoaded('fast'), /closed/);
    await rm(join(dir, 'fast'), { recursive: true });
  });
});
