/**
 * Model loading (issue 10): S3 download throughput of the machine model cache against a bare SDK
 * loop, and the cold load of a model that is already cached.
 *
 * - `download`: one object of `--mb` MiB (default 128, generated pseudo-random content) in s3rver,
 *   which runs in a child process on 127.0.0.1 (test/harness/s3-server.ts). Per round, in rotating
 *   order: `sdk` is a bare `GetObject` piped to a file (@aws-sdk/client-s3 configured as the store
 *   configures it: path-style, checksums WHEN_REQUIRED); `cache` is `ModelCache.get` through
 *   `S3ModelStore` into an empty cache root (partial file, MD5 check of the single-part ETag, rename),
 *   with the MD5 on a worker thread (the default for files ≥ 16 MiB), and `cache-inline` the same with
 *   the MD5 on the main thread.
 *   Throughput is MiB/s of wall time; the ratio is cache ÷ sdk of the medians, and the median of the
 *   ratios within a round. Goal: ≥ 0.9.
 * - `cold load`: `localVersion` of a version already in the cache, by a new `ModelCache` each time
 *   (what a replica starting on a machine that has the model pays): µs, median and p90 of `--hits`.
 *
 *   node --import tsx benchmarks/model-load.bench.ts [--mb 128] [--rounds 3] [--hits 200] [--quick]
 *
 * `--quick` (a smoke run for test/benchmarks/quick.test.ts, not a figure): 4 MiB, one round, 20 hits.
 *
 * Bounded: about `rounds` × 2 transfers of `mb` MiB plus the hits; disk use about 3 × `mb` (s3rver's
 * copy, one download at a time, the generated source removed after upload). Every process started is
 * ended by PID; temporary directories are removed, also on failure. Prints a table and writes
 * benchmarks/results/model-load.json.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { pino } from 'pino';
import { S3ModelStore } from '../adapters/storage/s3/s3-model-store.js';
import type { ModelVersionRef } from '../core/predictor/model-tree.js';
import { ModelCache } from '../serving/models/model-cache.js';
import { generatedContent } from '../test/harness/https-server.js';
import { S3RVER_CREDENTIALS, spawnS3Server } from '../test/harness/s3-server.js';
import { QUICK, arg, median, percentile, table, writeResults } from './harness/bench-util.js';

const MIB = 1024 * 1024;

async function main(): Promise<void> {
  const mb = Number(arg('mb', QUICK ? '4' : '128'));
  const rounds = Number(arg('rounds', QUICK ? '1' : '3'));
  const hits = Number(arg('hits', QUICK ? '20' : '200'));
  const bytes = mb * MIB;
  const loadAtStart = loadavg();
  const dir = await mkdtemp(join(tmpdir(), 'myelin-model-load-bench-'));
  const s3 = await spawnS3Server({ buckets: ['bench'] });
  const store = new S3ModelStore({ env: { AWS_ENDPOINT_URL: s3.endpoint } });
  const resolver = { get: () => store };
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey;
  const sdk = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const log = pino({ level: 'warn' });
  try {
    const source = join(dir, 'source.bin');
    await pipeline(generatedContent(bytes, 42), createWriteStream(source));
    await s3.put('bench', 'models/big/model.bin', { file: source });
    await rm(source);
    const url = 's3://bench/models/big/';
    const version: ModelVersionRef = { version: '1', url, objects: await store.list(url), timestamp: 0 };
    if (version.objects.length !== 1 || version.objects[0].size !== bytes) throw new Error(`unexpected listing ${JSON.stringify(version.objects)}`);
    const hasMd5 = version.objects[0].md5 !== undefined;

    const legs = {
      sdk: async (): Promise<number> => {
        const out = join(dir, 'sdk.bin');
        const t0 = performance.now();
        const res = await sdk.send(new GetObjectCommand({ Bucket: 'bench', Key: 'models/big/model.bin' }));
        await pipeline(res.Body as NodeJS.ReadableStream, createWriteStream(out));
        const ms = performance.now() - t0;
        if ((await stat(out)).size !== bytes) throw new Error('sdk leg: wrong size');
        await rm(out);
        return ms;
      },
      cache: (): Promise<number> => cacheLeg({}),
      'cache-inline': (): Promise<number> => cacheLeg({ workerHashMinBytes: Infinity }),
      'cache-size-only': (): Promise<number> => cacheLeg({ verify: 'size' }),
    };
    async function cacheLeg(options: { workerHashMinBytes?: number; verify?: 'md5' | 'size' }): Promise<number> {
      const root = join(dir, 'cache');
      const cache = new ModelCache(resolver, { root, log, ...options });
      const t0 = performance.now();
      const got = await cache.get(version);
      const ms = performance.now() - t0;
      if (got.hit || (await stat(join(got.path, 'model.bin'))).size !== bytes) throw new Error('cache leg: not a fresh, complete download');
      await rm(root, { recursive: true, force: true });
      return ms;
    }
    // One untimed transfer each: sockets, JIT, s3rver's file cache.
    await legs.sdk();
    await legs.cache();
    type Leg = keyof typeof legs;
    const LEGS: readonly Leg[] = ['sdk', 'cache', 'cache-inline', 'cache-size-only'];
    const ms: Record<Leg, number[]> = { sdk: [], cache: [], 'cache-inline': [], 'cache-size-only': [] };
    // CPU of this process (all threads: the cache's MD5 worker too) per leg, ms.
    const cpuMs: Record<Leg, number[]> = { sdk: [], cache: [], 'cache-inline': [], 'cache-size-only': [] };
    const paired: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const order = [...LEGS.slice(r % LEGS.length), ...LEGS.slice(0, r % LEGS.length)];
      const round: Partial<Record<Leg, number>> = {};
      for (const leg of order) {
        const cpu0 = process.cpuUsage();
        round[leg] = await legs[leg]();
        const cpu = process.cpuUsage(cpu0);
        cpuMs[leg].push((cpu.user + cpu.system) / 1000);
        ms[leg].push(round[leg]!);
      }
      paired.push(round.sdk! / round.cache!);
    }
    const mibps = (xs: number[]): number => mb / (median(xs) / 1000);

    // Cold load of a cached version: a new cache object per call, as a replica process starting.
    const root = join(dir, 'cache-hit');
    await new ModelCache(resolver, { root, log }).get(version);
    const hitUs: number[] = [];
    for (let i = 0; i < hits; i++) {
      const cache = new ModelCache(resolver, { root, log });
      const t0 = performance.now();
      const got = await cache.get(version);
      hitUs.push((performance.now() - t0) * 1000);
      if (!got.hit) throw new Error('expected a hit');
    }
    hitUs.sort((a, b) => a - b);

    const ratio = mibps(ms.cache) / mibps(ms.sdk);
    const pairedRatio = median(paired);
    console.log(`\nS3 download of ${mb} MiB from s3rver (child process, loopback), ${rounds} rounds; MD5 checked by the cache: ${hasMd5}`);
    console.log(
      table(
        ['leg', 'median ms', 'MiB/s', 'runs ms', 'client cpu ms (median)'],
        LEGS.map((l) => [
          ({ sdk: 'bare SDK GetObject → file', cache: 'ModelCache.get (MD5 on a worker, default)', 'cache-inline': 'ModelCache.get (MD5 inline)', 'cache-size-only': 'ModelCache.get (verify: size)' } as Record<Leg, string>)[l],
          median(ms[l]).toFixed(0),
          mibps(ms[l]).toFixed(0),
          ms[l].map((x) => x.toFixed(0)).join(' '),
          median(cpuMs[l]).toFixed(0),
        ]),
      ),
    );
    console.log(`load average at start ${loadAtStart.map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} CPUs (the MD5 worker runs in parallel only where a core is free)`);
    console.log(`cache ÷ sdk throughput: ${ratio.toFixed(2)} (median of paired rounds ${pairedRatio.toFixed(2)}); goal ≥ 0.9: ${ratio >= 0.9 ? 'met' : 'NOT met'}`);
    console.log(`MD5 inline ÷ sdk: ${(mibps(ms['cache-inline']) / mibps(ms.sdk)).toFixed(2)}; sizes only (MYELIN_MODEL_VERIFY=size) ÷ sdk: ${(mibps(ms['cache-size-only']) / mibps(ms.sdk)).toFixed(2)}`);
    console.log(`\ncold load of a cached version (new ModelCache, localVersion hit), ${hits} calls:`);
    console.log(table(['median µs', 'p90 µs', 'max µs'], [[median(hitUs).toFixed(0), percentile(hitUs, 90).toFixed(0), hitUs.at(-1)!.toFixed(0)]]));
    const out = writeResults('model-load', {
      loadAtStart,
      mb,
      rounds,
      md5Checked: hasMd5,
      download: {
        sdk: { ms: ms.sdk, medianMs: median(ms.sdk), mibPerSec: mibps(ms.sdk), cpuMs: cpuMs.sdk },
        cache: { ms: ms.cache, medianMs: median(ms.cache), mibPerSec: mibps(ms.cache), cpuMs: cpuMs.cache },
        'cache-inline': { ms: ms['cache-inline'], medianMs: median(ms['cache-inline']), mibPerSec: mibps(ms['cache-inline']), cpuMs: cpuMs['cache-inline'] },
        'cache-size-only': { ms: ms['cache-size-only'], medianMs: median(ms['cache-size-only']), mibPerSec: mibps(ms['cache-size-only']), cpuMs: cpuMs['cache-size-only'] },
        ratio,
        pairedRatio,
        sizeOnlyRatio: mibps(ms['cache-size-only']) / mibps(ms.sdk),
        inlineRatio: mibps(ms['cache-inline']) / mibps(ms.sdk),
        goal: 0.9,
        met: ratio >= 0.9,
      },
      coldLoadHit: { calls: hits, medianUs: median(hitUs), p90Us: percentile(hitUs, 90), maxUs: hitUs.at(-1) },
      headline: [
        { metric: `S3 download of ${mb} MiB through the model cache, MD5 checked`, ratio: pairedRatio, baseline: 'bare SDK GetObject to a file', aim: 0.9 },
        { metric: `S3 download of ${mb} MiB, MYELIN_MODEL_VERIFY=size`, ratio: mibps(ms['cache-size-only']) / mibps(ms.sdk), baseline: 'bare SDK GetObject to a file' },
      ],
    });
    console.log(`\nwrote ${out}`);
  } finally {
    if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
    else process.env.AWS_ACCESS_KEY_ID = saved.id;
    if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
    else process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    sdk.destroy();
    await store.close();
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
