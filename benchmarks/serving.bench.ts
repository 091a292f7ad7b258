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
 * comes from /proc (Linux). Loopback only, bounded in time (defaults: about 2 minutes for both models).
 *
 *   node --import tsx benchmarks/serving.bench.ts [--seconds 1.5] [--rounds 2] [--models js-micro,js-1ms,onnx-iris,onnx-3ms]
 *
 * Prints a table and writes benchmarks/results/serving.json. Models and their backends are the
 * `MODELS` table; how the baseline calls a backend directly is the `DIRECT` table: a new backend adds
 * one row to each.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { ApiSpec } from '../core/config/api-spec.js';
import type { PredictorClass } from '../core/predictor/predictor-contract.js';
import { apiSpecFixture, type ApiSpecOverrides } from '../test/harness/api-spec-fixture.js';
import { heavyModel } from '../test/harness/model-builders.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const REPLICA_ENTRY = join(ROOT, 'serving/replica/replica-entry.mjs');
const CONCURRENCIES = [1, 8, 64] as const;
const WARMUP_MS = 300;

/** A way to run the model: the baseline, or the replica with an executor and parallelism. */
type Variant =
  | { readonly name: 'baseline' }
  | { readonly name: string; readonly executor: 'in-thread' | 'worker-threads'; readonly processes?: number; readonly threads?: number };

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

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

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
// Role: load generator (child). Receives legs over IPC, answers with latencies.

interface LoadCommand {
  readonly port: number;
  readonly body: string;
  readonly contentType: string;
  readonly concurrency: number;
  readonly durationMs: number;
}
interface LegSamples {
  readonly latenciesMs: number[];
  readonly errors: number;
  readonly elapsedS: number;
  serverCpuUs?: number;
  requestsTotal: number;
}

async function runLoad(cmd: LoadCommand): Promise<LegSamples> {
  const agent = new Agent({ keepAlive: true, maxSockets: cmd.concurrency });
  const body = Buffer.from(cmd.body);
  const headers = { 'content-type': cmd.contentType, 'content-length': String(body.length) };
  const one = (): Promise<boolean> =>
    new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port: cmd.port, path: '/predict', method: 'POST', agent, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
        res.on('error', () => resolve(false));
      });
      req.on('error', () => resolve(false));
      req.end(body);
    });
  const latencies: number[] = [];
  let errors = 0;
  let total = 0;
  const warmEnd = performance.now() + WARMUP_MS;
  const end = warmEnd + cmd.durationMs;
  let measuredStart = 0;
  const loop = async (): Promise<void> => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) return;
      const ok = await one();
      const t1 = performance.now();
      total++;
      if (t0 >= warmEnd) {
        if (ok) latencies.push(t1 - t0);
        else errors++;
      }
    }
  };
  setTimeout(() => (measuredStart = performance.now()), WARMUP_MS);
  await Promise.all(Array.from({ length: cmd.concurrency }, loop));
  const elapsedS = (performance.now() - (measuredStart || warmEnd)) / 1000;
  agent.destroy();
  return { latenciesMs: latencies, errors, elapsedS, requestsTotal: total };
}

// ---------------------------------------------------------------------------------------------
// Main

interface Server {
  readonly variant: Variant;
  readonly proc: ChildProcess;
  readonly port: number;
}

function firstListening(proc: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not start within 60 s')), 60_000);
    const done = (port: number): void => {
      clearTimeout(timer);
      resolve(port);
    };
    proc.on('message', (m: { type?: string; port?: number }) => {
      if (m?.type === 'myelin.replica.listening' && m.port) done(m.port);
    });
    proc.stdout?.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const line = out.split('\n').find((l) => l.includes('myelin.replica.listening'));
      if (line) done((JSON.parse(line) as { port: number }).port);
    });
    proc.on('exit', (code) => reject(new Error(`server exited early with code ${code}`)));
  });
}

async function waitReady(port: number): Promise<void> {
  const end = Date.now() + 60_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/healthz/ready', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.end();
    });
    if (ok) return;
    if (Date.now() > end) throw new Error('server not ready within 60 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

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
  let proc: ChildProcess;
  if ('executor' in variant) {
    proc = spawn(process.execPath, [REPLICA_ENTRY], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
      env: { ...process.env, MYELIN_SPEC_FILE: specFile, MYELIN_PORT: '0', MYELIN_EXECUTOR: variant.executor, MYELIN_LOG_LEVEL: 'warn' },
    });
    // The IPC metric samples are read and dropped, as the daemon would read them.
    proc.on('message', () => {});
  } else {
    proc = spawn(process.execPath, ['--import', 'tsx', SELF, '--role', 'baseline', '--spec', specFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  }
  const port = await firstListening(proc);
  await waitReady(port).catch(async (err: Error) => {
    if ('executor' in variant) throw err;
  });
  return { variant, proc, port };
}

/** CPU time (user + system, µs) of a process, from /proc (Linux); 0 elsewhere. */
function cpuUsOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 per second on Linux).
    return ((Number(fields[11]) + Number(fields[12])) / 100) * 1e6;
  } catch {
    return 0;
  }
}

function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

interface Row {
  readonly model: string;
  readonly backend: string;
  readonly variant: string;
  readonly concurrency: number;
  readonly requests: number;
  readonly errors: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly serverCpuUsPerRequest: number;
}

function merge(model: BenchModel, variant: string, concurrency: number, legs: readonly LegSamples[]): Row {
  const all = legs.flatMap((l) => l.latenciesMs).sort((a, b) => a - b);
  const seconds = legs.reduce((s, l) => s + l.elapsedS, 0);
  const cpu = legs.reduce((s, l) => s + (l.serverCpuUs ?? 0), 0);
  const total = legs.reduce((s, l) => s + l.requestsTotal, 0);
  return {
    model: model.name,
    backend: model.spec.predictor?.type ?? 'javascript',
    variant,
    concurrency,
    requests: all.length,
    errors: legs.reduce((s, l) => s + l.errors, 0),
    rps: all.length / seconds,
    p50Ms: percentile(all, 50),
    p99Ms: percentile(all, 99),
    serverCpuUsPerRequest: total > 0 ? cpu / total : Number.NaN,
  };
}

function leg(load: ChildProcess, cmd: LoadCommand): Promise<LegSamples> {
  return new Promise((resolve) => {
    load.once('message', (m) => resolve(m as LegSamples));
    load.send(cmd);
  });
}

async function main(): Promise<void> {
  const seconds = Number(arg('seconds', '1'));
  const rounds = Number(arg('rounds', '5'));
  const only = arg('models', '');
  const models = MODELS.filter((m) => !only || only.split(',').includes(m.name));
  writeFileSync(ONNX_HEAVY, heavyModel());
  const dir = mkdtempSync(join(tmpdir(), 'myelin-serving-bench-'));
  const load = fork(SELF, ['--role', 'load'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const rows: Row[] = [];
  const paired = new Map<string, number[]>();
  try {
    for (const model of models) {
      const servers: Server[] = [];
      try {
        for (const v of model.variants) servers.push(await startServer(model, v, dir));
        for (const concurrency of CONCURRENCIES) {
          const legs = new Map<string, LegSamples[]>(servers.map((s) => [s.variant.name, []]));
          for (let r = 0; r < rounds; r++) {
            // Rotate the order each round, so no variant always runs first (or always after another).
            const order = servers.map((_, i) => servers[(i + r + concurrency) % servers.length]);
            for (const s of order) {
              const c0 = cpuUsOf(s.proc.pid);
              const samples = await leg(load, { port: s.port, body: model.body, contentType: model.contentType, concurrency, durationMs: seconds * 1000 });
              samples.serverCpuUs = cpuUsOf(s.proc.pid) - c0;
              legs.get(s.variant.name)!.push(samples);
            }
          }
          for (const s of servers) rows.push(merge(model, s.variant.name, concurrency, legs.get(s.variant.name)!));
          const baseLegs = legs.get('baseline')!;
          for (const s of servers) {
            if (s.variant.name === 'baseline') continue;
            const mine = legs.get(s.variant.name)!;
            paired.set(
              `${model.name}|${concurrency}|${s.variant.name}`,
              mine.map((l, i) => l.latenciesMs.length / l.elapsedS / (baseLegs[i].latenciesMs.length / baseLegs[i].elapsedS)),
            );
          }
          printRows(rows.filter((x) => x.model === model.name && x.concurrency === concurrency));
        }
      } finally {
        for (const s of servers) s.proc.kill('SIGTERM');
        await Promise.all(servers.map((s) => new Promise((r) => (s.proc.exitCode !== null ? r(null) : s.proc.once('exit', r)))));
      }
    }
  } finally {
    load.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  const ratios = rows
    .filter((r) => r.variant !== 'baseline')
    .map((r) => {
      const base = rows.find((b) => b.model === r.model && b.concurrency === r.concurrency && b.variant === 'baseline')!;
      return {
        model: r.model,
        variant: r.variant,
        concurrency: r.concurrency,
        throughputRatio: r.rps / base.rps,
        // Median over rounds of (variant / baseline) within the same round: the legs of one round run
        // back to back, so a burst of load from other processes hits both sides of a pair, not one total.
        pairedThroughputRatio: median(paired.get(`${r.model}|${r.concurrency}|${r.variant}`) ?? []),
        p50DeltaMs: r.p50Ms - base.p50Ms,
        p99Ratio: r.p99Ms / base.p99Ms,
        cpuPerRequestRatio: r.serverCpuUsPerRequest / base.serverCpuUsPerRequest,
      };
    });
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
  const out = join(ROOT, 'benchmarks/results/serving.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, loadAverage: loadavg(), secondsPerLeg: seconds, rounds, rows, ratios }, null, 2)}\n`,
  );
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

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

const role = arg('role', 'main');
if (role === 'baseline') await runBaseline(arg('spec', ''));
else if (role === 'load') {
  process.on('message', (cmd: LoadCommand) => {
    void runLoad(cmd).then((r) => process.send!(r));
  });
} else await main();
