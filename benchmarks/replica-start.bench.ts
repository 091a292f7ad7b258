/**
 * Replica start-up: spawn → first 200 to a prediction, and resident memory once idle, for an iris
 * ONNX replica against a hand-written node:http + onnxruntime-node server loading the same model,
 * in the same run (issue 12; goals: ≤ 2× the baseline's start, ≤ +60 MB RSS).
 *
 * Variants, each started `--rounds` times in rotating order (one process at a time, nothing else
 * running from this bench):
 * - `baseline`: a plain ES module run by node (no tsx): import onnxruntime-node, create the session,
 *   listen, answer POST /predict;
 * - `replica (dist)`: the compiled replica (dist/serving/replica/replica-entry.js), the way the
 *   daemon, `myelin replica` and the package run it, with an IPC channel as the local orchestrator gives it;
 * - `replica (sources, tsx)`: the same replica from the TypeScript sources through tsx (a clone's
 *   tests), to show what compiling saves;
 * - `replica (dist) + predictor.ts`: examples/iris-onnx as the daemon runs it, a TypeScript predictor
 *   wrapping the model (tsx compiles that one file), from a copy of the project in a folder where
 *   `node_modules/myelin` links to this package (as the daemon's state folder does), in that folder.
 * Start time is measured from just before spawn to the first 200 answer to the sample, polling with a
 * fresh connection every 5 ms; RSS is /proc/<pid>/status VmRSS after `--idle` seconds of no traffic.
 * Medians over rounds are reported, and the ratios to the baseline's medians. Loopback only; every
 * process is ended by PID, also on failure or a signal.
 *
 *   node --import tsx benchmarks/replica-start.bench.ts [--rounds 5] [--idle 2] [--quick]
 *
 * Prints a table and writes benchmarks/results/replica-start.json. Needs dist/ (npm ci or npm run build
 * makes it; built here when missing).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { linkPackageInto } from '../adapters/fs/package-root.js';
import { apiSpecFixture } from '../test/harness/api-spec-fixture.js';
import { freePort } from '../test/harness/gateway-replicas.js';
import { arg, median, table, writeResults } from './harness/bench-util.js';
import { OwnedProcesses, spawnReplica } from './harness/server-processes.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MODEL = join(ROOT, 'examples/iris-onnx/model/iris.onnx');
/** The example's request (its predictor.ts reads named features) and the model's own input (rows of 4 floats), for path-less APIs and the baseline. */
const SAMPLE = readFileSync(join(ROOT, 'examples/iris-onnx/sample.json'), 'utf8');
const ROWS = JSON.stringify([[5.2, 3.6, 1.4, 0.3]]);
const DIST_ENTRY = join(ROOT, 'dist/serving/replica/replica-entry.js');
const SOURCE_ENTRY = join(ROOT, 'serving/replica/replica-entry.mjs');
const quick = process.argv.includes('--quick');
const ROUNDS = Number(arg('rounds', quick ? '1' : '5'));
const IDLE_MS = Number(arg('idle', quick ? '0.5' : '2')) * 1000;
const START_TIMEOUT_MS = 60_000;

/** The baseline server: plain JavaScript, no framework, no tsx. Reads the model path and sample shape from argv. */
const BASELINE_SOURCE = `
import { createServer } from 'node:http';
const ort = await import(${JSON.stringify(pathToFileURL(fileURLToPath(import.meta.resolve('onnxruntime-node'))).href)});
const session = await ort.InferenceSession.create(process.argv[2], { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
const input = session.inputNames[0];
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    try {
      const rows = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const out = await session.run({ [input]: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, rows[0].length]) });
      const text = JSON.stringify(Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Array.from(t.data, Number)])));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    } catch (err) {
      res.writeHead(500);
      res.end(String(err));
    }
  });
});
server.listen(Number(process.argv[3]), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

interface Variant {
  readonly name: string;
  readonly body: string;
  start(dir: string, port: number): ChildProcess;
}

const owned = new OwnedProcesses();

function specFile(dir: string, name: string, withPredictor: boolean): string {
  const file = join(dir, `${name}.json`);
  const project = withPredictor ? projectCopy(dir) : join(ROOT, 'examples/iris-onnx');
  const predictor = withPredictor
    ? { type: 'onnx' as const, path: join(project, 'predictor.ts'), modelPath: join(project, 'model/iris.onnx'), config: { labels: ['setosa', 'versicolor', 'virginica'] } }
    : { type: 'onnx' as const, modelPath: MODEL };
  const spec = apiSpecFixture({ name: `start-${name}`, predictor });
  writeFileSync(file, JSON.stringify({ ...spec, projectDir: project }));
  return file;
}

/** examples/iris-onnx copied under `dir`, which gets `node_modules/myelin` → this package (as the daemon's state folder). */
function projectCopy(dir: string): string {
  const project = join(dir, 'projects', 'iris-onnx');
  if (!existsSync(project)) {
    cpSync(join(ROOT, 'examples/iris-onnx'), project, { recursive: true });
    linkPackageInto(dir);
  }
  return project;
}

const VARIANTS: readonly Variant[] = [
  {
    name: 'baseline (node:http + onnxruntime-node)',
    body: ROWS,
    start(dir, port) {
      const file = join(dir, 'baseline.mjs');
      if (!existsSync(file)) writeFileSync(file, BASELINE_SOURCE);
      return spawn(process.execPath, [file, MODEL, String(port)], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } });
    },
  },
  {
    name: 'replica (dist)',
    body: ROWS,
    start: (dir, port) => spawnReplica(specFile(dir, 'dist', false), { entry: DIST_ENTRY, env: { MYELIN_PORT: String(port) } }),
  },
  {
    name: 'replica (sources, tsx)',
    body: ROWS,
    start: (dir, port) => spawnReplica(specFile(dir, 'sources', false), { entry: SOURCE_ENTRY, env: { MYELIN_PORT: String(port) } }),
  },
  {
    name: 'replica (dist) + predictor.ts',
    body: SAMPLE,
    start: (dir, port) => spawnReplica(specFile(dir, 'dist-predictor', true), { entry: DIST_ENTRY, env: { MYELIN_PORT: String(port) }, cwd: projectCopy(dir) }),
  },
];
/** What runs: every variant, or with --quick the baseline and the compiled replica (a smoke run). */
const RUN: readonly Variant[] = quick ? VARIANTS.slice(0, 2) : VARIANTS;


/** POST the sample on a fresh connection: the status, 0 when the connection fails. */
function post(port: number, body: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/predict', method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** VmRSS of `pid` in MB (Linux /proc), NaN when unreadable. */
function rssMb(pid: number): number {
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return kb / 1024;
  } catch {
    return Number.NaN;
  }
}

interface Sample {
  readonly startMs: number;
  readonly rssMb: number;
}

async function measure(v: Variant, dir: string): Promise<Sample> {
  const port = await freePort();
  const t0 = performance.now();
  const proc = owned.add(v.start(dir, port));
  proc.stdout?.resume();
  try {
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${v.name} exited before it answered (${proc.signalCode ?? proc.exitCode})`);
      if (performance.now() - t0 > START_TIMEOUT_MS) throw new Error(`${v.name} did not answer within ${START_TIMEOUT_MS / 1000} s`);
      const status = await post(port, v.body);
      if (status === 200) break;
      if (status !== 0 && status !== 503) throw new Error(`${v.name} answered ${status}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const startMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, IDLE_MS));
    return { startMs, rssMb: rssMb(proc.pid!) };
  } finally {
    await owned.stop([proc]);
  }
}

async function main(): Promise<void> {
  owned.stopOnSignals();
  if (!existsSync(DIST_ENTRY)) execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], { stdio: 'inherit' });
  const dir = mkdtempSync(join(tmpdir(), 'myelin-bench-start-'));
  const samples = new Map<string, Sample[]>(RUN.map((v) => [v.name, []]));
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order per round, so no variant always runs first (a cold page cache).
      for (let i = 0; i < RUN.length; i++) {
        const v = RUN[(i + round) % RUN.length];
        samples.get(v.name)!.push(await measure(v, dir));
      }
    }
  } finally {
    await owned.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const base = RUN[0].name;
  const med = (name: string, k: keyof Sample): number => median(samples.get(name)!.map((s) => s[k]));
  const rows = RUN.map((v) => {
    const start = med(v.name, 'startMs');
    const rss = med(v.name, 'rssMb');
    return {
      variant: v.name,
      startMs: Math.round(start),
      startRatio: Number((start / med(base, 'startMs')).toFixed(2)),
      idleRssMb: Math.round(rss),
      rssDeltaMb: Math.round(rss - med(base, 'rssMb')),
      rounds: samples.get(v.name)!.map((s) => ({ startMs: Math.round(s.startMs), rssMb: Math.round(s.rssMb) })),
    };
  });
  console.log(
    table(
      ['variant', 'spawn → first 200 (ms, median)', '× baseline', 'idle RSS (MB)', 'Δ RSS vs baseline (MB)'],
      rows.map((r) => [r.variant, String(r.startMs), r.startRatio.toFixed(2), String(r.idleRssMb), (r.rssDeltaMb >= 0 ? '+' : '') + r.rssDeltaMb]),
    ),
  );
  const headline = rows.slice(1).map((r) => ({ metric: `spawn → first 200, ${r.variant} (${r.rssDeltaMb >= 0 ? '+' : ''}${r.rssDeltaMb} MB RSS)`, ratio: r.startRatio, baseline: base, aim: 2, higherIsBetter: false }));
  const file = writeResults('replica-start', { rounds: ROUNDS, idleMs: IDLE_MS, goals: { startRatio: 2, rssDeltaMb: 60 }, rows, headline });
  console.log(`\nwrote ${file}`);
}

await main();
