/**
 * The serving replica versus a hand-written node:http server that calls the same predictor directly,
 * in the same run, per model and concurrency (1, 8, 64).
 *
 * Processes: each server is a child (the replica through its real entry, serving/replica/replica-entry.mjs,
 * with an IPC channel as the local orchestrator gives it; the baseline through `--role baseline`), and
 * the load generator is another child (`--role load`: a keep-alive agent, `concurrency` closed loops of
 * POSTs). For each model, every server variant is started, then for each concurrency the legs run in
 * `--rounds` rounds, each variant once per round for `--seconds` after a short warm-up, the order
 * rotating per round; the rounds of a variant are merged (requests over total time, percentiles over all
 * latencies), and the throughput ratio is also given as the median over rounds of the ratio within a
 * round (robust to bursts of load from other processes on a shared machine). Server CPU per request
 * comes from /proc (Linux), for the server process and its descendants (the replica's worker threads
 * are in its own process). Loopback only, bounded in time (defaults: about 2 minutes for both models);
 * every process started is ended by PID at the end, also on failure or SIGINT/SIGTERM.
 *
 * The load generator, the legs' schedule and their merging are benchmarks/harness/closed-loop-load.ts,
 * shared with benchmarks/python-bridge.bench.ts; the server processes are benchmarks/harness/server-processes.ts.
 * Since they are shared, a request is measured when it ENDS after the warm-up (it was: when it started
 * after it), so one a server kept waiting since the warm-up counts with its whole wait; the rows also
 * give the mean and maximum latency and the fewest and most requests one connection completed in a leg,
 * and the ratios the mean and p50 ratios too.
 * Only the replica is polled on /healthz/ready before its legs: the baseline has no such route (it
 * answered 500 to the poll, which then waited its whole deadline, 60 s, per model). Every server must
 * answer the model's body with a 200 once before its legs, or the bench fails with its last output.
 *
 *   node --import tsx benchmarks/serving.bench.ts [--seconds 1] [--rounds 5] [--models js-micro,js-1ms,onnx-iris,onnx-3ms]
 *     [--variants in-thread,worker] [--compare-entry <other tree>/serving/replica/replica-entry.mjs] [--quick]
 *
 * `--quick` (a smoke run for test/benchmarks/quick.test.ts, not a figure): onnx-iris, the baseline and
 * the in-thread replica, one round of 0.2 s. `MYELIN_BENCH_PROFILE=<dir>` runs every
 * server with `--cpu-prof` into `<dir>/replica` and `<dir>/baseline` (docs/performance.md).
 *
 * Prints a table and writes benchmarks/results/serving.json. Models and their backends are the
 * `MODELS` table; how the baseline calls a backend directly is the `DIRECT` table: a new backend adds
 * one row to each.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { ApiSpec } from '../core/config/api-spec.js';
import type { PredictorClass } from '../core/predictor/predictor-contract.js';
import { apiSpecFixture, type ApiSpecOverrides } from '../test/harness/api-spec-fixture.js';
import { heavyModel } from '../test/harness/model-builders.js';
import { QUICK, arg, table, writeResults, type Headline } from './harness/bench-util.js';
import { WARMUP_MS, compareLegs, forkLoadGenerator, mergeLegs, runRounds, serveLoadCommands, type Comparison, type LegSamples, type LegStats } from './harness/closed-loop-load.js';
import { OwnedProcesses, awaitServer, profileArgs, spawnReplica } from './harness/server-processes.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CONCURRENCIES = [1, 8, 64] as const;

/** A way to run the model: the baseline, or the replica with an executor and parallelism. */
type Variant =
  | { readonly name: 'baseline' }
  | {
      readonly name: string;
      readonly executor: 'in-thread' | 'worker-threads';
      readonly processes?: number;
      readonly threads?: number;
      /** Another replica entry (e.g. a copy of an earlier revision's serving/replica/replica-entry.mjs). */
      readonly entry?: string;
    };

/** One benchmarked model: its spec (backend = `predictor.type`), one request body, the variants to compare. */
interface BenchModel {
  readonly name: string;
  readonly spec: ApiSpecOverrides;
  readonly body: string;
  readonly contentType: string;
  readonly variants: readonly Variant[];
}

const IRIS_SAMPLE = readFileSync(join(ROOT, 'examples/hello-typescript/sample.json'), 'utf8').replace(/\s+/g, '');

/** The ms-scale ONNX model (8 × 256³ MatMul per row, ~3 ms on one core), written by main() before its servers start. */
const ONNX_HEAVY = join(tmpdir(), 'myelin-bench-onnx-heavy-256x8.onnx');

const MODELS: readonly BenchModel[] = [
  {
    name: 'js-micro',
    spec: { predictor: { type: 'javascript', path: join(ROOT, 'examples/hello-typescript/predictor.ts'), threadsPerProcess: 64 } },
    body: IRIS_SAMPLE,
    contentType: 'application/json',
    variants: [
      { name: 'baseline' },
      { name: 'replica in-thread', executor: 'in-thread', threads: 64 },
      { name: 'replica 1 worker', executor: 'worker-threads', processes: 1, threads: 64 },
    ],
  },
  {
    name: 'js-1ms',
    spec: { predictor: { type: 'javascript', path: join(ROOT, 'benchmarks/models/dense-predictor.ts'), config: { layers: 4 } } },
    body: JSON.stringify({ x: Array.from({ length: 16 }, (_, i) => i / 16) }),
    contentType: 'application/json',
    variants: [
      { name: 'baseline' },
      { name: 'replica in-thread', executor: 'in-thread', threads: 1 },
      { name: 'replica 1 worker', executor: 'worker-threads', processes: 1, threads: 1 },
      { name: 'replica 2 workers', executor: 'worker-threads', processes: 2, threads: 1 },
    ],
  },
  {
    name: 'onnx-iris',
    spec: { predictor: { type: 'onnx', modelPath: join(ROOT, 'examples/iris-onnx/model/iris.onnx'), threadsPerProcess: 64 } },
    body: JSON.stringify([[5.1, 3.5, 1.4, 0.2]]),
    contentType: 'application/json',
    variants: [
      { name: 'baseline' },
      { name: 'replica in-thread', executor: 'in-thread', threads: 64 },
      { name: 'replica 1 worker', executor: 'worker-threads', processes: 1, threads: 64 },
    ],
  },
  {
    name: 'onnx-3ms',
    spec: { predictor: { type: 'onnx', modelPath: ONNX_HEAVY } },
    body: JSON.stringify([Array.from({ length: 256 }, (_, i) => Number(Math.sin(i).toFixed(4)))]),
    contentType: 'application/json',
    variants: [
      { name: 'baseline' },
      { name: 'replica in-thread', executor: 'in-thread', threads: 1 },
      { name: 'replica 1 worker', executor: 'worker-threads', processes: 1, threads: 1 },
      { name: 'replica 2 workers', executor: 'worker-threads', processes: 2, threads: 1 },
    ],
  },
];

/**
 * How the baseline server calls a backend directly, by `predictor.type`: a function from the spec to
 * a `predict(payload)` that returns the prediction (no replica code involved).
 */
const DIRECT: Readonly<Record<string, (spec: ApiSpec) => Promise<(payload: unknown) => unknown>>> = {
  async javascript(spec) {
    const mod = (await import(pathToFileURL(spec.predictor.path!).href)) as { Predictor?: PredictorClass; default?: PredictorClass };
    const Cls = (mod.Predictor ?? mod.default)!;
    const p = new Cls({ config: structuredClone(spec.predictor.config) as Record<string, unknown>, log: pino({ level: 'silent' }) });
    await p.init?.();
    return (payload) => p.predict({ payload, query: {}, headers: {} });
  },
  /** onnxruntime-node called directly: a single-thread session, float32 rows in, flat arrays out. */
  async onnx(spec) {
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(spec.predictor.modelPath!, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
    const input = session.inputNames[0];
    return async (payload) => {
      const rows = payload as number[][];
      const out = await session.run({ [input]: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, rows[0].length]) });
      return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Array.from(t.data as ArrayLike<number | bigint>, Number)]));
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Role: baseline server (child). A plain node:http server: read the body, JSON.parse, predict, send.

async function runBaseline(specFile: string): Promise<void> {
  const spec = JSON.parse(readFileSync(specFile, 'utf8')) as ApiSpec;
  const direct = DIRECT[spec.predictor.type];
  if (!direct) throw new Error(`no direct baseline for predictor type ${spec.predictor.type}`);
  const predict = await direct(spec);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        try {
          const value = await predict(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          const text = typeof value === 'string' ? value : JSON.stringify(value);
          res.writeHead(200, { 'content-type': typeof value === 'string' ? 'text/plain' : 'application/json', 'content-length': Buffer.byteLength(text) });
          res.end(text);
        } catch (err) {
          res.writeHead(500);
          res.end(String(err));
        }
      })();
    });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ type: 'myelin.replica.listening', port: (server.address() as AddressInfo).port })}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

// ---------------------------------------------------------------------------------------------
// Main

interface Server {
  readonly variant: Variant;
  readonly proc: ChildProcess;
  readonly port: number;
}

/** Every process this bench started (servers, the load generator), ended by PID at the end. */
const owned = new OwnedProcesses();

async function startServer(model: BenchModel, variant: Variant, dir: string): Promise<Server> {
  const spec = apiSpecFixture({
    name: `bench-${model.name}`,
    ...model.spec,
    predictor: {
      ...model.spec.predictor,
      ...('executor' in variant ? { processesPerReplica: variant.processes ?? 1, threadsPerProcess: variant.threads ?? 1 } : {}),
    },
  });
  const specFile = join(dir, `${model.name}-${variant.name.replace(/\W+/g, '-')}.json`);
  writeFileSync(specFile, JSON.stringify(spec));
  const proc = owned.add(
    'executor' in variant
      ? spawnReplica(specFile, { executor: variant.executor, ...(variant.entry ? { entry: variant.entry } : {}) })
      : spawn(process.execPath, [...profileArgs('baseline'), '--import', 'tsx', SELF, '--role', 'baseline', '--spec', specFile], { stdio: ['ignore', 'pipe', 'inherit'] }),
  );
  // The baseline answers once it listens (it has no /healthz/ready); the replica loads its predictor after.
  const { port } = await awaitServer(proc, `${model.name} ${variant.name}`, { ready: 'executor' in variant, sample: { body: model.body, contentType: model.contentType } });
  return { variant, proc, port };
}

/** One variant of one model at one concurrency, its rounds merged (`LegStats`: ms, req/s, CPU µs/request). */
interface Row extends LegStats {
  readonly model: string;
  readonly backend: string;
  readonly variant: string;
  readonly concurrency: number;
}

function merge(model: BenchModel, variant: string, concurrency: number, legs: readonly LegSamples[]): Row {
  return { model: model.name, backend: model.spec.predictor?.type ?? 'javascript', variant, concurrency, ...mergeLegs(legs) };
}

/** A replica variant against the baseline (`Comparison`: ratios replica ÷ baseline, p50 Δ in ms). */
interface Ratio extends Comparison {
  readonly model: string;
  readonly variant: string;
  readonly concurrency: number;
}

async function main(): Promise<void> {
  const seconds = Number(arg('seconds', QUICK ? '0.2' : '1'));
  const rounds = Number(arg('rounds', QUICK ? '1' : '5'));
  const only = arg('models', QUICK ? 'onnx-iris' : '');
  // --variants in-thread: the baseline and the variants whose name contains one of the words.
  const variantWords = arg('variants', QUICK ? 'in-thread' : '').split(',').filter(Boolean);
  // --compare-entry <replica-entry.mjs of another tree>: also that replica, in-thread (before/after in one run).
  const compareEntry = arg('compare-entry', '');
  const models = MODELS.filter((m) => !only || only.split(',').includes(m.name)).map((m) => {
    const variants = m.variants.filter((v) => v.name === 'baseline' || variantWords.length === 0 || variantWords.some((w) => v.name.includes(w)));
    const inThread = variants.find((v): v is Extract<Variant, { executor: unknown }> => 'executor' in v && v.executor === 'in-thread');
    if (compareEntry && inThread) variants.push({ ...inThread, name: 'replica in-thread (compared entry)', entry: compareEntry });
    return { ...m, variants };
  });
  writeFileSync(ONNX_HEAVY, heavyModel());
  const dir = mkdtempSync(join(tmpdir(), 'myelin-serving-bench-'));
  const load = owned.add(forkLoadGenerator(SELF));
  owned.stopOnSignals();
  const rows: Row[] = [];
  const ratios: Ratio[] = [];
  try {
    for (const model of models) {
      try {
        const servers: Server[] = [];
        for (const v of model.variants) servers.push(await startServer(model, v, dir));
        const targets = servers.map((s) => ({ name: s.variant.name, port: s.port, pid: s.proc.pid }));
        for (const concurrency of CONCURRENCIES) {
          const legs = await runRounds(load, targets, {
            rounds,
            concurrency,
            leg: { body: model.body, contentType: model.contentType, durationMs: seconds * 1000, warmupMs: WARMUP_MS },
            cpuUs: (pid) => owned.cpuUs(pid),
          });
          for (const s of servers) rows.push(merge(model, s.variant.name, concurrency, legs.get(s.variant.name)!));
          for (const s of servers) {
            if (s.variant.name === 'baseline') continue;
            ratios.push({ model: model.name, variant: s.variant.name, concurrency, ...compareLegs(legs.get(s.variant.name)!, legs.get('baseline')!) });
          }
          printRows(rows.filter((x) => x.model === model.name && x.concurrency === concurrency));
        }
      } finally {
        // Every server of this model, also one that failed to start: every child but the load generator.
        await owned.stop(owned.list().filter((p) => p !== load));
      }
    }
  } finally {
    await owned.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log('\nratios (replica / baseline, same run):');
  console.log(
    table(
      ['model', 'variant', 'conc', 'rps ratio', 'median paired', 'p50 Δ ms', 'p99 ratio', 'cpu/req ratio'],
      ratios.map((x) => [
        x.model,
        x.variant,
        String(x.concurrency),
        x.throughputRatio.toFixed(3),
        x.pairedThroughputRatio.toFixed(3),
        x.p50DeltaMs.toFixed(3),
        x.p99Ratio.toFixed(3),
        x.cpuPerRequestRatio.toFixed(3),
      ]),
    ),
  );
  const headline: Headline[] = ratios.map((x) => ({
    metric: `${x.model} ${x.variant} c=${x.concurrency} req/s (p50 ${x.p50DeltaMs >= 0 ? '+' : ''}${x.p50DeltaMs.toFixed(3)} ms)`,
    ratio: x.pairedThroughputRatio,
    baseline: 'hand-written node:http server calling the model',
    ...(x.variant.includes('in-thread') && (x.model === 'js-micro' || x.model === 'onnx-iris') ? { aim: 1 } : {}),
  }));
  const out = writeResults('serving', { loadAverage: loadavg(), secondsPerLeg: seconds, rounds, rows, ratios, headline });
  console.log(`\nwrote ${out}`);
}

function printRows(rows: readonly Row[]): void {
  console.log(
    table(
      ['model', 'variant', 'conc', 'req/s', 'p50 ms', 'p99 ms', 'server cpu µs/req', 'errors'],
      rows.map((r) => [r.model, r.variant, String(r.concurrency), r.rps.toFixed(0), r.p50Ms.toFixed(3), r.p99Ms.toFixed(3), r.serverCpuUsPerRequest.toFixed(0), String(r.errors)]),
    ),
  );
}

const role = arg('role', 'main');
if (role === 'baseline') await runBaseline(arg('spec', ''));
else if (role === 'load') serveLoadCommands();
else await main();
