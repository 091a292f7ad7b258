/**
 * Server-side batching (issue 10, "Benchmark"): the same batch-friendly ONNX model served by two
 * replicas, one with `server_side_batching` (max_batch_size 32, a short interval) and one without,
 * driven at concurrency 32 in the same run. Goal: batching ≥ 2 × the throughput of no batching.
 *
 * The model is a stack of `--layers` MatMul + ReLU layers, x [N, size] × W [size, size] (default 96
 * layers of 128): a run's cost is mostly per run, not per row (onnxruntime's per-node dispatch over
 * 192 nodes, the weight matrix streamed once per layer, tensor set-up and session.run), and 32 rows
 * reuse each weight 32 times in a matrix-matrix product, so a run of 32 rows costs a few times a run
 * of one, not 32 times. Wider, shallower stacks (512 × 8, 1024 × 4) spend more per row and less per
 * run and gain less on this machine (×1.4–1.8 measured, against ×2 for 128 × 96), because the replica's
 * per-request work (HTTP, JSON, binding) is then a larger share of what batching cannot remove.
 *
 * Processes, as benchmarks/serving.bench.ts (benchmarks/harness/): each replica is a child started
 * through its real entry (serving/replica/replica-entry.mjs), in-thread, 1 process × 32 threads (the
 * config loader's rule max_batch_size ≤ processes × threads), onnxruntime single-threaded; the load
 * generator is another child (`--role load`: a keep-alive agent, 32 closed loops of POSTs of one row).
 * The legs run in `--rounds` rounds, each replica once per round for `--seconds` after a short warm-up,
 * the order rotating per round; the ratio is the merged throughput ratio and the median of the
 * per-round ratios. The batched replica's mean batch size comes from its /metrics (`myelin_batch_size`).
 * Loopback only, bounded in time (defaults: about 30 s); every process started is ended by PID.
 *
 *   ONNXRUNTIME_NODE_INSTALL=skip node --import tsx benchmarks/batching.bench.ts \
 *     [--seconds 2] [--rounds 3] [--size 128] [--layers 96] [--interval-ms 2] [--quick]
 *
 * `--quick` (a smoke run for test/benchmarks/quick.test.ts, not a figure): one round of 0.2 s, 8 layers.
 *
 * Prints a table and writes benchmarks/results/batching.json.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiSpecFixture } from '../test/harness/api-spec-fixture.js';
import { encodeOnnxModel } from '../test/harness/onnx-proto.js';
import { QUICK, arg, table, writeResults } from './harness/bench-util.js';
import { WARMUP_MS, compareLegs, forkLoadGenerator, mergeLegs, runRounds, serveLoadCommands, type LegStats } from './harness/closed-loop-load.js';
import { OwnedProcesses, awaitServer, spawnReplica } from './harness/server-processes.js';

const SELF = fileURLToPath(import.meta.url);
const CONCURRENCY = 32;
const MAX_BATCH_SIZE = 32;

/** `layers` × (MatMul by a size×size matrix, ReLU), then a mean over the features: x [batch, size] → y [batch, 1]. */
export function matmulModel(size: number, layers: number): Uint8Array {
  const w = new Float32Array(size * size);
  // Scaled so that activations stay O(1) through the layers.
  for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) w[i * size + j] = Math.sin(i * 7.1 + j * 3.3) / Math.sqrt(size);
  const nodes = [];
  for (let k = 1; k <= layers; k++) {
    nodes.push({ opType: 'MatMul', inputs: [k === 1 ? 'x' : `h${k - 1}`, 'W'], outputs: [`m${k}`] });
    nodes.push({ opType: 'Relu', inputs: [`m${k}`], outputs: [`h${k}`] });
  }
  nodes.push({ opType: 'ReduceMean', inputs: [`h${layers}`], outputs: ['y'], attributes: { axes: { kind: 'ints' as const, value: [1] }, keepdims: { kind: 'int' as const, value: 1 } } });
  return encodeOnnxModel({
    graphName: 'matmul_stack',
    inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', size] }],
    outputs: [{ name: 'y', elemType: 'float32', shape: ['batch', 1] }],
    initializers: [{ name: 'W', elemType: 'float32', dims: [size, size], data: w }],
    nodes,
  });
}

function metricsText(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => resolve(text));
    })
      .on('error', reject)
      .end();
  });
}

/** Mean requests per batch from `myelin_batch_size` (sum / count); NaN without batches. */
function meanBatchSize(text: string): number {
  const read = (s: string): number => Number(new RegExp(`^myelin_batch_size_${s}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return read('sum') / read('count');
}

interface Row extends LegStats {
  readonly variant: string;
  readonly meanBatchSize?: number;
}

async function main(): Promise<void> {
  const seconds = Number(arg('seconds', QUICK ? '0.2' : '2'));
  const rounds = Number(arg('rounds', QUICK ? '1' : '3'));
  const size = Number(arg('size', '128'));
  const layers = Number(arg('layers', QUICK ? '8' : '96'));
  const intervalMs = Number(arg('interval-ms', '2'));
  const dir = mkdtempSync(join(tmpdir(), 'myelin-batching-bench-'));
  const modelPath = join(dir, `matmul-${size}x${layers}.onnx`);
  writeFileSync(modelPath, matmulModel(size, layers));
  const body = JSON.stringify([Array.from({ length: size }, (_, i) => Number(Math.sin(i).toFixed(4)))]);
  const owned = new OwnedProcesses();
  owned.stopOnSignals();
  const variants = [
    { name: 'no batching', batching: undefined },
    { name: `batching ${MAX_BATCH_SIZE} / ${intervalMs} ms`, batching: { maxBatchSize: MAX_BATCH_SIZE, batchIntervalMs: intervalMs } },
  ];
  try {
    const load = owned.add(forkLoadGenerator(SELF));
    const servers = [];
    for (const v of variants) {
      const spec = apiSpecFixture({
        name: 'bench-batching',
        projectDir: dir,
        predictor: { type: 'onnx', modelPath, processesPerReplica: 1, threadsPerProcess: CONCURRENCY, ...(v.batching ? { serverSideBatching: v.batching } : {}) },
      });
      const specFile = join(dir, `${v.batching ? 'batched' : 'plain'}.json`);
      writeFileSync(specFile, JSON.stringify(spec));
      const proc = owned.add(spawnReplica(specFile, { executor: 'in-thread' }));
      const { port } = await awaitServer(proc, v.name, { ready: true, sample: { body, contentType: 'application/json' } });
      servers.push({ name: v.name, port, pid: proc.pid });
    }
    const legs = await runRounds(load, servers, {
      rounds,
      concurrency: CONCURRENCY,
      leg: { body, contentType: 'application/json', durationMs: seconds * 1000, warmupMs: WARMUP_MS },
      cpuUs: (pid) => owned.cpuUs(pid),
    });
    const batchedName = variants[1].name;
    const mean = meanBatchSize(await metricsText(servers[1].port));
    const rows: Row[] = servers.map((s) => ({ variant: s.name, ...mergeLegs(legs.get(s.name)!), ...(s.name === batchedName ? { meanBatchSize: mean } : {}) }));
    const cmp = compareLegs(legs.get(batchedName)!, legs.get(variants[0].name)!);
    console.log(`model: ${layers} × MatMul [N, ${size}] × [${size}, ${size}] + ReLU; concurrency ${CONCURRENCY}; ${rounds} rounds × ${seconds} s`);
    console.log(
      table(
        ['variant', 'req/s', 'p50 ms', 'p99 ms', 'server cpu µs/req', 'mean batch', 'errors'],
        rows.map((r) => [r.variant, r.rps.toFixed(0), r.p50Ms.toFixed(2), r.p99Ms.toFixed(2), r.serverCpuUsPerRequest.toFixed(0), r.meanBatchSize?.toFixed(1) ?? '-', String(r.errors)]),
      ),
    );
    console.log(
      `\nbatching / none: throughput ×${cmp.throughputRatio.toFixed(2)} (median paired ×${cmp.pairedThroughputRatio.toFixed(2)}), p50 ×${cmp.p50Ratio.toFixed(2)}, cpu/request ×${cmp.cpuPerRequestRatio.toFixed(2)} (goal: throughput ≥ ×2)`,
    );
    const out = writeResults('batching', {
      loadAverage: loadavg(),
      model: { size, layers },
      concurrency: CONCURRENCY,
      maxBatchSize: MAX_BATCH_SIZE,
      batchIntervalMs: intervalMs,
      secondsPerLeg: seconds,
      rounds,
      rows,
      throughputRatio: cmp.throughputRatio,
      pairedThroughputRatio: cmp.pairedThroughputRatio,
      comparison: cmp,
      goalMet: cmp.pairedThroughputRatio >= 2,
      headline: [{ metric: `req/s at c=${CONCURRENCY}, server_side_batching ${MAX_BATCH_SIZE} / ${intervalMs} ms`, ratio: cmp.pairedThroughputRatio, baseline: 'the same replica without batching', aim: 2 }],
    });
    console.log(`wrote ${out}`);
  } finally {
    await owned.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (arg('role', 'main') === 'load') serveLoadCommands();
else await main();
