/**
 * The machine model cache against real parts: the https store on a local HTTPS server
 * (test/harness/https-server.ts: generated content, cut connections, corrupted bytes, held responses),
 * real files in temporary cache roots, and real child processes sharing one root.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { pino } from 'pino';
import { HttpsModelStore } from '../../../adapters/storage/https/https-model-store.js';
import type { ModelDownloadProgress } from '../../../core/ports/model-provider.js';
import { ModelStoreError } from '../../../core/ports/model-store.js';
import type { ModelVersionRef } from '../../../core/predictor/model-tree.js';
import { ModelCache, defaultModelCacheRoot } from '../../../serving/models/model-cache.js';
import { generatedContent, startHttpsServer, type HttpsTestServer } from '../../harness/https-server.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MB = 1024 * 1024;

/** A pino logger writing into `lines` (SG 7.4). */
function captureLog(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

async function md5File(path: string): Promise<string> {
  const h = createHash('md5');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

async function versionOf(store: HttpsModelStore, url: string): Promise<ModelVersionRef> {
  return { version: '1', url, objects: await store.list(url), timestamp: 0 };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('ModelCache', () => {
  let server: HttpsTestServer;
  let store: HttpsModelStore;
  let root: string;
  let capture: ReturnType<typeof captureLog>;
  let cache: ModelCache;
  const savedCa = process.env.MYELIN_MODEL_CA_FILE;

  before(async () => {
    server = await startHttpsServer();
    process.env.MYELIN_MODEL_CA_FILE = server.caFile;
    store = new HttpsModelStore();
    await server.add('/m/small.onnx', 'small-model-bytes');
    await server.add('/m/big.bin', { generated: { size: 200 * MB, seed: 7 } });
    for (const name of ['cut', 'corrupt', 'stale', 'shared', 'dedupe', 'damaged']) await server.add(`/m/${name}.bin`, { generated: { size: 3 * MB, seed: name.length } });
  });
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'myelin-model-cache-'));
    capture = captureLog();
    // 1 MiB: the 3 MiB models hash on the worker thread (resume: the prefix too), small.onnx inline.
    cache = new ModelCache({ get: () => store }, { root, log: capture.log, retryDelayMs: 10, lockPollMs: 50, workerHashMinBytes: MB });
  });
  afterEach(() => rm(root, { recursive: true, force: true }));
  after(async () => {
    if (savedCa === undefined) delete process.env.MYELIN_MODEL_CA_FILE;
    else process.env.MYELIN_MODEL_CA_FILE = savedCa;
    await store.close();
    await server.close();
  });

  test('a 200 MB model: streamed to <root>/v1/<key>/<file>, byte-identical, progress at most ~4/s plus a final one; then a hit', async () => {
    const url = server.url('/m/big.bin');
    const version = await versionOf(store, url);
    const events: ModelDownloadProgress[] = [];
    const t0 = performance.now();
    const got = await cache.get(version, { onProgress: (p) => events.push(p) });
    const elapsedMs = performance.now() - t0;
    assert.equal(got.path, join(root, 'v1', ModelCache.key(version), 'big.bin'));
    assert.deepEqual([got.hit, got.bytes], [false, 200 * MB]);
    assert.equal(await md5File(got.path), server.md5('/m/big.bin'));
    const last = events.at(-1)!;
    assert.deepEqual([last.done, last.bytes, last.total, last.url], [true, 200 * MB, 200 * MB, url]);
    assert.ok(last.rateBytesPerSec > 0);
    assert.equal(events.filter((e) => e.done).length, 1);
    for (let i = 1; i < events.length; i++) assert.ok(events[i].bytes >= events[i - 1].bytes, 'bytes never go down');
    // The throttle: one report per 250 ms at most, plus the first and the final one.
    assert.ok(events.length <= Math.ceil(elapsedMs / 250) + 2, `want ≤ ${Math.ceil(elapsedMs / 250) + 2} reports, got ${events.length}`);
    assert.deepEqual(await readdir(join(root, 'v1', '.partial')), [], 'nothing left in .partial');

    const gets = server.gets('/m/big.bin').length;
    const again = await cache.get(version);
    assert.deepEqual([again.hit, again.path], [true, got.path]);
    assert.equal(server.gets('/m/big.bin').length, gets, 'a hit downloads nothing');
    await cache.drop(version);
    assert.equal(existsSync(join(root, 'v1', ModelCache.key(version))), false);
  });

  test('an interrupted transfer is resumed with a Range request from what is on disk, byte-identical', async () => {
    const url = server.url('/m/cut.bin');
    const version = await versionOf(store, url);
    server.cut('/m/cut.bin', 1_234_567, 2);
    const events: ModelDownloadProgress[] = [];
    const got = await cache.get(version, { onProgress: (p) => events.push(p) });
    const gets = server.gets('/m/cut.bin');
    assert.equal(gets.length, 3, 'two cut transfers and one that completes');
    assert.equal(gets[0].range, undefined);
    for (const g of gets.slice(1)) assert.match(g.range ?? '', /^bytes=[1-9]\d*-$/);
    assert.ok(Number(/\d+/.exec(gets[2].range!)![0]) > Number(/\d+/.exec(gets[1].range!)![0]), 'each resume starts further on');
    assert.equal(await md5File(got.path), server.md5('/m/cut.bin'));
    assert.equal(events.at(-1)!.bytes, 3 * MB);
    assert.ok(capture.lines.some((l) => l.msg === 'model transfer failed; resuming'));
  });

  for (const hashing of ['worker', 'inline'] as const) {
    test(`a corrupt model (MD5 ${hashing}): ENG_MODEL_CORRUPT after the retries, naming the URL, the file, expected and got; nothing at the final path`, async () => {
      if (hashing === 'inline') cache = new ModelCache({ get: () => store }, { root, log: capture.log, retryDelayMs: 10, workerHashMinBytes: Infinity });
      const url = server.url('/m/corrupt.bin');
      const version = await versionOf(store, url);
      const getsBefore = server.gets('/m/corrupt.bin').length;
      server.corrupt('/m/corrupt.bin');
      try {
        await assert.rejects(cache.get(version), (err) => {
          assert.ok(err instanceof ModelStoreError, String(err));
          assert.equal(err.code, 'ENG_MODEL_CORRUPT');
          assert.equal(err.url, url);
          assert.match(err.message, new RegExp(`${url.replace(/[/.]/g, '\\$&')}.*corrupt after 3 attempts.*MD5: expected ${server.md5('/m/corrupt.bin')}, got [0-9a-f]{32}`));
          return true;
        });
      } finally {
        server.corrupt('/m/corrupt.bin', 0);
      }
      assert.equal(server.gets('/m/corrupt.bin').length - getsBefore, 3);
      const key = ModelCache.key(version);
      assert.equal(existsSync(join(root, 'v1', key)), false, 'no final copy');
      assert.equal(existsSync(join(root, 'v1', '.partial', key, 'corrupt.bin')), false, 'the bad file is deleted');
      assert.equal(existsSync(join(root, 'v1', '.locks', `${key}.lock`)), false, 'the lock is released');
      // Once the server is fixed, the same version downloads.
      const got = await cache.get(version);
      assert.equal(await md5File(got.path), server.md5('/m/corrupt.bin'));
    });
  }

  test('verify: size (MYELIN_MODEL_VERIFY=size) checks sizes only: same-size corrupt bytes are not caught', async () => {
    const sizeOnly = new ModelCache({ get: () => store }, { root: join(root, 'size-only'), log: capture.log, retryDelayMs: 10, verify: 'size' });
    const url = server.url('/m/corrupt.bin');
    const version = await versionOf(store, url);
    server.corrupt('/m/corrupt.bin');
    try {
      const got = await sizeOnly.get(version);
      assert.notEqual(await md5File(got.path), server.md5('/m/corrupt.bin'));
    } finally {
      server.corrupt('/m/corrupt.bin', 0);
    }
  });

  test('callers in one process share one download', async () => {
    const url = server.url('/m/dedupe.bin');
    const version = await versionOf(store, url);
    const [a, b] = await Promise.all([cache.get(version), cache.get(version)]);
    assert.equal(a.path, b.path);
    assert.equal(server.gets('/m/dedupe.bin').length, 1);
  });

  test('two cache instances of one process (two predictor worker threads) share one download, intact', async () => {
    await server.add('/m/threads.bin', { generated: { size: 3 * MB, seed: 77 } });
    const url = server.url('/m/threads.bin');
    const version = await versionOf(store, url);
    const other = new ModelCache({ get: () => store }, { root, log: capture.log, lockPollMs: 20 });
    const first = cache.get(version);
    // The second asks once the first holds the lock (its lock carries this process's pid).
    await new Promise((r) => setTimeout(r, 30));
    const [a, b] = await Promise.all([first, other.get(version)]);
    assert.equal(a.path, b.path);
    assert.equal(server.gets('/m/threads.bin').length, 1);
    assert.equal(await md5File(a.path), server.md5('/m/threads.bin'));
    assert.ok(!capture.lines.some((l) => String(l.msg).includes('taking over')), 'the live lock was not taken over');
  });

  test('a stale lock of a dead process is taken over and its partial data resumed', async () => {
    const url = server.url('/m/stale.bin');
    const version = await versionOf(store, url);
    const key = ModelCache.key(version);
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => dead.once('exit', r));
    await mkdir(join(root, 'v1', '.locks'), { recursive: true });
    await writeFile(join(root, 'v1', '.locks', `${key}.lock`), JSON.stringify({ pid: dead.pid, host: hostname(), started: new Date().toISOString() }));
    // The dead process got the first 1 MB + 17 bytes.
    await mkdir(join(root, 'v1', '.partial', key), { recursive: true });
    const half = 1 * MB + 17;
    let written = 0;
    await pipeline(
      (async function* () {
        for await (const c of generatedContent(3 * MB, 'stale'.length)) {
          if (written >= half) return;
          const part = c.subarray(0, half - written);
          written += part.length;
          yield part;
        }
      })(),
      createWriteStream(join(root, 'v1', '.partial', key, 'stale.bin')),
    );
    const events: ModelDownloadProgress[] = [];
    const got = await cache.get(version, { onProgress: (p) => events.push(p) });
    assert.deepEqual(server.gets('/m/stale.bin').map((g) => g.range), [`bytes=${half}-`]);
    assert.equal(await md5File(got.path), server.md5('/m/stale.bin'));
    assert.ok(events[0].bytes >= half, 'progress counts the resumed bytes');
    assert.ok(capture.lines.some((l) => String(l.msg).startsWith('taking over a stale model download lock')));
    assert.equal(existsSync(join(root, 'v1', '.locks', `${key}.lock`)), false);
  });

  test('two processes share one download: one GET, the other waits for the lock and gets the same copy', async () => {
    const url = server.url('/m/shared.bin');
    const script = join(root, 'child.mts');
    const imp = (p: string): string => JSON.stringify(new URL(p, `file://${ROOT}`).href);
    await writeFile(
      script,
      [
        `import { pino } from ${JSON.stringify(import.meta.resolve('pino'))};`,
        `import { HttpsModelStore } from ${imp('adapters/storage/https/https-model-store.ts')};`,
        `import { ModelCache } from ${imp('serving/models/model-cache.ts')};`,
        `const [url, root] = process.argv.slice(2);`,
        `const store = new HttpsModelStore();`,
        `const cache = new ModelCache({ get: () => store }, { root, log: pino({}, pino.destination({ dest: 1, sync: true })), lockPollMs: 50 });`,
        `const got = await cache.get({ version: '1', url, objects: await store.list(url), timestamp: 0 });`,
        `process.stdout.write(JSON.stringify({ result: got }) + '\\n');`,
        `await store.close();`,
      ].join('\n'),
    );
    const release = server.hold('/m/shared.bin');
    const children = [0, 1].map(() => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, url, join(root, 'cache')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MYELIN_MODEL_CA_FILE: server.caFile } });
      const out = { lines: [] as Array<Record<string, unknown>>, stderr: '', exit: new Promise<number | null>((r) => child.once('exit', (code) => r(code))) };
      let buf = '';
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const parts = buf.split('\n');
        buf = parts.pop()!;
        for (const l of parts) if (l.trim()) out.lines.push(JSON.parse(l) as Record<string, unknown>);
      });
      child.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
      return { child, out };
    });
    try {
      // One of them holds the lock and its GET is held by the server; the other must be waiting.
      await until('the first GET', () => server.gets('/m/shared.bin').length >= 1).catch((err) => {
        throw new Error(`${(err as Error).message}; children's stderr:\n${children.map((c) => c.out.stderr).join('\n')}`);
      });
      await until('a child waiting for the lock', () => children.some((c) => c.out.lines.some((l) => l.msg === 'another process is downloading this model; waiting')));
      release();
      const codes = await Promise.all(children.map((c) => c.out.exit));
      assert.deepEqual(codes, [0, 0], children.map((c) => c.out.stderr).join('\n'));
    } finally {
      release();
      for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) process.kill(c.child.pid!, 'SIGKILL');
    }
    const results = children.map((c) => c.out.lines.find((l) => l.result)!.result as { path: string; hit: boolean });
    assert.equal(results[0].path, results[1].path);
    assert.deepEqual(results.map((r) => r.hit).sort(), [false, false], 'neither found it in the cache when asking');
    assert.equal(server.gets('/m/shared.bin').length, 1, 'the server served the object once');
    assert.equal(await md5File(results[0].path), server.md5('/m/shared.bin'));
  });

  test('a damaged copy (a file truncated behind its back) is downloaded again', async () => {
    const version = await versionOf(store, server.url('/m/damaged.bin'));
    const first = await cache.get(version);
    await truncate(first.path, 10);
    const second = await cache.get(version);
    assert.equal(second.hit, false);
    assert.equal((await stat(second.path)).size, 3 * MB);
    assert.equal(server.gets('/m/damaged.bin').length, 2);
  });

  test('drop removes the copy (a later get downloads again); dropping a missing entry does not throw', async () => {
    const version = await versionOf(store, server.url('/m/small.onnx'));
    const got = await cache.get(version);
    assert.equal(await readFile(got.path, 'utf8'), 'small-model-bytes');
    assert.deepEqual(await cache.keys(), [ModelCache.key(version)]);
    await cache.drop(version);
    assert.deepEqual(await cache.keys(), []);
    await cache.drop(version);
    await cache.drop({ url: server.url('/m/never.onnx'), objects: [] });
    assert.equal((await cache.get(version)).hit, false);
  });

  test('local versions are never copied: the file or folder itself', async () => {
    const cases = [
      { name: 'a model file', version: { version: '1', url: '/srv/models/iris.onnx', objects: [{ key: '', size: 5 }], timestamp: 0 }, want: '/srv/models/iris.onnx' },
      { name: 'a version folder', version: { version: '2', url: '/srv/models/tf/2/', objects: [{ key: 'saved_model.pb', size: 3 }, { key: 'variables/v.index', size: 4 }], timestamp: 0 }, want: '/srv/models/tf/2/' },
      { name: 'a file:// URL', version: { version: '1', url: 'file:///srv/models/iris.onnx', objects: [{ key: '', size: 5 }], timestamp: 0 }, want: '/srv/models/iris.onnx' },
    ];
    for (const c of cases) {
      const got = await cache.get(c.version);
      assert.deepEqual(got, { path: c.want, hit: true, bytes: c.version.objects.reduce((n, o) => n + o.size, 0) }, c.name);
    }
    assert.deepEqual(await cache.keys(), []);
  });

  test('the key is content-addressed: a changed ETag or size is another key; object order does not matter', () => {
    const base = { url: 's3://b/m/', objects: [{ key: 'a', size: 1, etag: 'x' }, { key: 'b', size: 2 }] };
    const key = ModelCache.key(base);
    assert.match(key, /^[0-9a-f]{64}$/);
    assert.equal(ModelCache.key({ ...base, objects: [...base.objects].reverse() }), key);
    assert.notEqual(ModelCache.key({ ...base, objects: [{ key: 'a', size: 1, etag: 'y' }, base.objects[1]] }), key);
    assert.notEqual(ModelCache.key({ ...base, objects: [base.objects[0], { key: 'b', size: 3 }] }), key);
    assert.notEqual(ModelCache.key({ ...base, url: 's3://b/other/' }), key);
  });

  test('an object key that would leave the folder is refused', async () => {
    await assert.rejects(cache.get({ version: '1', url: server.url('/m/'), objects: [{ key: '../escape', size: 1 }], timestamp: 0 }), (err) => err instanceof ModelStoreError && err.message.includes('../escape'));
  });
});

describe('defaultModelCacheRoot', () => {
  const cases = [
    { name: 'MYELIN_MODEL_CACHE first', env: { MYELIN_MODEL_CACHE: '/data/cache', XDG_CACHE_HOME: '/x', HOME: '/home/u' }, want: '/data/cache' },
    { name: 'then XDG_CACHE_HOME', env: { XDG_CACHE_HOME: '/x', HOME: '/home/u' }, want: '/x/myelin/models' },
    { name: 'then ~/.cache', env: { HOME: '/home/u' }, want: '/home/u/.cache/myelin/models' },
  ];
  for (const c of cases) test(c.name, () => assert.equal(defaultModelCacheRoot(c.env), c.want));
});
