/**
 * The Python bridge (plugins/predictor-python/) against the stack Cortex 0.2x's Python image ran,
 * FastAPI + uvicorn, on the same unchanged `predictor.py`, in the same run, at concurrency 1, 8 and 64
 * (issue 9, "Benchmark"). Three suites:
 *
 * - `sklearn`: examples/iris-sklearn/predictor.py (a scikit-learn PythonPredictor) on
 *   benchmarks/python/fastapi_baseline.py (one uvicorn process, a request thread pool of
 *   threads_per_process = 1; flavours `minimal`, one async route, and `cortex`, serve.py's CORS and two
 *   middlewares in front of a sync route) and on the replica with the bridge (1 × 1, and 2 × 1). Goal:
 *   the replica 1 × 1 at ≥ 1.5 × each baseline's throughput at every concurrency, p50 no worse.
 * - `onnx`: benchmarks/python/onnx_predictor.py (an ONNXPredictor `.py` through the bridge, its model
 *   in the replica's onnxruntime-node) against examples/iris-onnx/predictor.ts (the same predictor in
 *   TypeScript), both 1 × 1 on examples/iris-onnx/model/iris.onnx.
 * - `bridge-cost`: the replica with a trivial TypeScript predictor against the replica with the same
 *   trivial predictor in Python (benchmarks/python/echo-predictor.ts, echo_predictor.py: `return
 *   payload`), at concurrency 1: the differences of mean latency and of server CPU per request are
 *   the bridge's own cost per request, in µs. benchmarks/python/inprocess_loop.py gives what the Python
 *   code itself costs in a tight loop (predict, and predict with json.loads/json.dumps).
 *
 * Processes, as benchmarks/serving.bench.ts (both use benchmarks/harness/: closed-loop-load.ts for the
 * load generator, the rounds and their merging, server-processes.ts for the servers): each server is a
 * child (the replica through its real entry, serving/replica/replica-entry.mjs, with an IPC channel as
 * the local orchestrator gives it; the baseline as `python3 fastapi_baseline.py`), and the load
 * generator is another child (`--role load`: a keep-alive agent, `concurrency` closed loops of POSTs).
 * Per suite every server is started and warmed up, then for each concurrency the legs run in `--rounds`
 * rounds, each server once per round for `--seconds` after a short warm-up, the order rotating per
 * round; the rounds of a server are merged (requests over total time, percentiles over all latencies)
 * and the throughput ratio is also the median over rounds of the ratio within a round. Server CPU per
 * request is read from /proc (Linux) for the server process and all its descendants (the replica's
 * Python workers). Loopback only, bounded in time (defaults: about 3 minutes); every process started is
 * ended by PID at the end, also on failure.
 *
 *   ONNXRUNTIME_NODE_INSTALL=skip node --import tsx benchmarks/python-bridge.bench.ts \
 *     [--seconds 1] [--rounds 4] [--suites sklearn,onnx,bridge-cost] [--no-2x] [--quick]
 *
 * `--quick` (a smoke run for test/benchmarks/quick.test.ts, not a figure): the bridge-cost suite only,
 * one round of 0.2 s, no 2 × 1 replica.
 *
 * The interpreter is MYELIN_PYTHON (default /usr/bin/python3 when it exists, else python3 on PATH): it
 * needs numpy and scikit-learn for the sklearn suite, fastapi and uvicorn for the baseline. uvicorn
 * runs with `--loop auto --http auto`: asyncio and h11 with Debian's packages (uvloop when
 * python3-uvloop is importable; Cortex's own image had uvloop and httptools, so the Debian baseline is
 * the slower of the two). Prints a table per leg group, the ratios and the bridge's cost, and writes
 * benchmarks/results/python-bridge.json (not committed: benchmarks/results/*.json is ignored).
 *
 * Reading p50 at high concurrency: uvicorn does not serve its connections in turn (the `req/conn
 * min–max` column: at 64 some connections complete hundreds of requests in a leg, others one or two,
 * waiting up to the whole leg), so its p50 is that of the lucky connections; the replica serves its
 * admission queue in order, so its p50 is about concurrency ÷ throughput. Compare p99 and max too.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiSpecFixture, type ApiSpecOverrides } from '../test/harness/api-spec-fixture.js';
import { QUICK, arg, table, writeResults } from './harness/bench-util.js';
import { WARMUP_MS, compareLegs, forkLoadGenerator, leg, mergeLegs, runRounds, serveLoadCommands, type Comparison, type LegSamples, type LegStats } from './harness/closed-loop-load.js';
import { OwnedProcesses, awaitServer, spawnReplica } from './harness/server-processes.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PY_DIR = join(ROOT, 'benchmarks/python');
const PYTHON = process.env.MYELIN_PYTHON || (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
/** Each server gets this much load (concurrency 8) before its first measured leg: JIT, caches, pools. */
const PREWARM_MS = 600;

const IRIS_BODY = readFileSync(join(ROOT, 'examples/iris-sklearn/sample.json'), 'utf8').trim();
const SKLEARN_PREDICTOR = join(ROOT, 'examples/iris-sklearn/predictor.py');
const SKLEARN_CONFIG = { C: 10 };
const IRIS_ONNX = join(ROOT, 'examples/iris-onnx/model/iris.onnx');
const IRIS_LABELS = { labels: ['setosa', 'versicolor', 'virginica'] };

/** A server to load: the FastAPI baseline (a flavour of it), or a replica with a predictor spec and parallelism. */
type Variant =
  | { readonly name: string; readonly kind: 'fastapi'; readonly flavour: 'minimal' | 'cortex'; readonly predictor: string; readonly config: unknown; readonly threads: number }
  | {
      readonly name: string;
      readonly kind: 'replica';
      readonly spec: ApiSpecOverrides;
      readonly processes: number;
      readonly threads: number;
      /** MYELIN_EXECUTOR; unset for the bridge (it runs its own workers). */
      readonly executor?: 'in-thread';
    };

/** One comparison: servers loaded with the same body, and which pairs to give as ratios (variant ÷ reference). */
interface Suite {
  readonly name: string;
  readonly body: string;
  readonly contentType: string;
  readonly concurrencies: readonly number[];
  /** Multiplies `--seconds` for this suite's legs (the bridge-cost legs are longer: µs differences). */
  readonly secondsFactor: number;
  readonly variants: readonly Variant[];
  readonly ratios: readonly { readonly variant: string; readonly reference: string }[];
}

function replicaSpec(predictor: ApiSpecOverrides['predictor']): ApiSpecOverrides {
  return { predictor: { ...predictor, env: { MYELIN_PYTHON: PYTHON } } };
}

function suites(with2x: boolean): Suite[] {
  const pySklearn = replicaSpec({ type: 'python', path: SKLEARN_PREDICTOR, config: SKLEARN_CONFIG });
  const fastapi = (flavour: 'minimal' | 'cortex'): Variant => ({ name: `fastapi ${flavour}`, kind: 'fastapi', flavour, predictor: SKLEARN_PREDICTOR, config: SKLEARN_CONFIG, threads: 1 });
  return [
    {
      name: 'sklearn',
      body: IRIS_BODY,
      contentType: 'application/json',
      concurrencies: [1, 8, 64],
      secondsFactor: 1,
      variants: [
        fastapi('minimal'),
        fastapi('cortex'),
        { name: 'myelin 1x1', kind: 'replica', spec: pySklearn, processes: 1, threads: 1 },
        ...(with2x ? [{ name: 'myelin 2x1', kind: 'replica', spec: pySklearn, processes: 2, threads: 1 } as const] : []),
      ],
      ratios: [
        { variant: 'myelin 1x1', reference: 'fastapi minimal' },
        { variant: 'myelin 1x1', reference: 'fastapi cortex' },
        ...(with2x ? [{ variant: 'myelin 2x1', reference: 'fastapi minimal' }] : []),
      ],
    },
    {
      name: 'onnx',
      body: IRIS_BODY,
      contentType: 'application/json',
      concurrencies: [1, 8, 64],
      secondsFactor: 1,
      variants: [
        {
          name: 'typescript onnx',
          kind: 'replica',
          spec: replicaSpec({ type: 'onnx', path: join(ROOT, 'examples/iris-onnx/predictor.ts'), modelPath: IRIS_ONNX, config: IRIS_LABELS }),
          processes: 1,
          threads: 1,
          executor: 'in-thread',
        },
        {
          name: 'python onnx (bridge)',
          kind: 'replica',
          spec: replicaSpec({ type: 'onnx', path: join(PY_DIR, 'onnx_predictor.py'), modelPath: IRIS_ONNX, config: IRIS_LABELS }),
          processes: 1,
          threads: 1,
        },
      ],
      ratios: [{ variant: 'python onnx (bridge)', reference: 'typescript onnx' }],
    },
    {
      name: 'bridge-cost',
      body: IRIS_BODY,
      contentType: 'application/json',
      concurrencies: [1],
      secondsFactor: 2,
      variants: [
        { name: 'typescript echo', kind: 'replica', spec: replicaSpec({ type: 'javascript', path: join(PY_DIR, 'echo-predictor.ts') }), processes: 1, threads: 1, executor: 'in-thread' },
        { name: 'python echo (bridge)', kind: 'replica', spec: replicaSpec({ type: 'python', path: join(PY_DIR, 'echo_predictor.py') }), processes: 1, threads: 1 },
      ],
      ratios: [{ variant: 'python echo (bridge)', reference: 'typescript echo' }],
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Servers: start, check their answer, end by PID

interface Server {
  readonly variant: Variant;
  readonly proc: ChildProcess;
  readonly port: number;
  /** What the server said about itself when it listened (the baseline: uvicorn's http/loop, versions). */
  readonly info: Record<string, unknown>;
  /** A sample answer to the suite's body (checked to be the same answer across a suite's servers). */
  sample?: string;
}

/** Every process this bench started (servers, the load generator), ended by PID at the end, also on failure. */
const owned = new OwnedProcesses();

async function startServer(suite: Suite, variant: Variant, dir: string): Promise<Server> {
  let proc: ChildProcess;
  if (variant.kind === 'replica') {
    const spec = apiSpecFixture({
      name: `bench-${suite.name}`,
      ...variant.spec,
      predictor: { ...variant.spec.predictor, processesPerReplica: variant.processes, threadsPerProcess: variant.threads },
    });
    const specFile = join(dir, `${suite.name}-${variant.name.replace(/\W+/g, '-')}.json`);
    writeFileSync(specFile, JSON.stringify(spec));
    proc = spawnReplica(specFile, { executor: variant.executor, env: { MYELIN_PYTHON: PYTHON } });
  } else {
    proc = spawn(
      PYTHON,
      [join(PY_DIR, 'fastapi_baseline.py'), '--predictor', variant.predictor, '--config', JSON.stringify(variant.config), '--threads', String(variant.threads), '--flavour', variant.flavour],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } },
    );
  }
  owned.add(proc);
  const { port, info, sample } = await awaitServer(proc, variant.name, { ready: variant.kind === 'replica', sample: { body: suite.body, contentType: suite.contentType } });
  return { variant, proc, port, info, sample };
}

/** Two answers to the same request are the same: equal text, or equal JSON with numbers within 1e-5 (float32 → JSON). */
function sameAnswer(a: string, b: string): boolean {
  if (a === b) return true;
  const near = (x: unknown, y: unknown): boolean => {
    if (typeof x === 'number' && typeof y === 'number') return Math.abs(x - y) <= 1e-5 * Math.max(1, Math.abs(x));
    if (Array.isArray(x) && Array.isArray(y)) return x.length === y.length && x.every((v, i) => near(v, y[i]));
    if (x && y && typeof x === 'object' && typeof y === 'object') {
      const kx = Object.keys(x).sort();
      const ky = Object.keys(y).sort();
      return kx.join() === ky.join() && kx.every((k) => near((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k]));
    }
    return x === y;
  };
  try {
    return near(JSON.parse(a), JSON.parse(b));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Rows, ratios and tables

/**
 * One server of a suite at one concurrency, its rounds merged (`LegStats`: ms, req/s; server CPU is the
 * server process and its descendants, the Python workers, per request sent, warm-up included).
 */
interface Row extends LegStats {
  readonly suite: string;
  readonly variant: string;
  readonly concurrency: number;
}

function merge(suite: string, variant: string, concurrency: number, legs: readonly LegSamples[]): Row {
  return { suite, variant, concurrency, ...mergeLegs(legs) };
}

/** A server of a suite against its reference (`Comparison`: ratios variant ÷ reference). */
interface Ratio extends Comparison {
  readonly suite: string;
  readonly variant: string;
  readonly reference: string;
  readonly concurrency: number;
}

/** The issue's goal applies to the sklearn suite's myelin 1 × 1 against each FastAPI baseline. */
function isGoal(x: Ratio): boolean {
  return x.suite === 'sklearn' && x.variant === 'myelin 1x1';
}

/** ≥ 1.5 × the baseline's throughput, with p50 no worse. */
function goalMet(x: Ratio): boolean {
  return x.throughputRatio >= 1.5 && x.p50Ratio <= 1;
}

function printRows(rows: readonly Row[]): void {
  console.log(
    table(
      ['suite', 'variant', 'conc', 'req/s', 'mean ms', 'p50 ms', 'p99 ms', 'max ms', 'req/conn min–max', 'server cpu µs/req', 'errors'],
      rows.map((r) => [
        r.suite,
        r.variant,
        String(r.concurrency),
        r.rps.toFixed(0),
        r.meanMs.toFixed(3),
        r.p50Ms.toFixed(3),
        r.p99Ms.toFixed(3),
        r.maxMs.toFixed(1),
        `${r.perConnectionMin}–${r.perConnectionMax}`,
        r.serverCpuUsPerRequest.toFixed(0),
        String(r.errors),
      ]),
    ),
  );
}

/** What inprocess_loop.py measures for a PythonPredictor: µs per call, bare and with json.loads/dumps. */
function inProcess(predictor: string, config: unknown, body: string, seconds: number): { predictUs: number; withJsonUs: number } {
  const out = execFileSync(
    PYTHON,
    [join(PY_DIR, 'inprocess_loop.py'), '--predictor', predictor, '--config', JSON.stringify(config), '--body', body, '--seconds', String(seconds)],
    { encoding: 'utf8', timeout: 60_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } },
  );
  const r = JSON.parse(out.trim().split('\n').at(-1)!) as { predict_us: number; with_json_us: number };
  return { predictUs: r.predict_us, withJsonUs: r.with_json_us };
}

// ---------------------------------------------------------------------------------------------
// Main

async function runSuite(suite: Suite, load: ChildProcess, dir: string, seconds: number, rounds: number, rows: Row[], ratios: Ratio[], info: Record<string, unknown>): Promise<void> {
  const servers: Server[] = [];
  try {
    for (const v of suite.variants) servers.push(await startServer(suite, v, dir));
    const agree = servers.every((s) => sameAnswer(s.sample!, servers[0].sample!));
    if (!agree) console.warn(`warning: the ${suite.name} servers answer the sample differently:\n${servers.map((s) => `  ${s.variant.name}: ${s.sample}`).join('\n')}`);
    info[suite.name] = { answersAgree: agree, ...Object.fromEntries(servers.map((s) => [s.variant.name, { ...s.info, sample: s.sample }])) };
    for (const s of servers) {
      const w = await leg(load, { port: s.port, body: suite.body, contentType: suite.contentType, concurrency: 8, durationMs: PREWARM_MS, warmupMs: 0 });
      if (w.errors > 0) throw new Error(`${s.variant.name}: ${w.errors} errors while warming up`);
    }
    const targets = servers.map((s) => ({ name: s.variant.name, port: s.port, pid: s.proc.pid }));
    for (const concurrency of suite.concurrencies) {
      const legs = await runRounds(load, targets, {
        rounds,
        concurrency,
        leg: { body: suite.body, contentType: suite.contentType, durationMs: seconds * suite.secondsFactor * 1000, warmupMs: WARMUP_MS },
        cpuUs: (pid) => owned.cpuUs(pid),
      });
      const group = servers.map((s) => merge(suite.name, s.variant.name, concurrency, legs.get(s.variant.name)!));
      rows.push(...group);
      printRows(group);
      for (const { variant, reference } of suite.ratios) {
        ratios.push({ suite: suite.name, variant, reference, concurrency, ...compareLegs(legs.get(variant)!, legs.get(reference)!) });
      }
    }
  } finally {
    // Every server of the suite, also one that failed to start: every child but the load generator.
    await owned.stop(owned.list().filter((p) => p !== load));
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const seconds = Number(arg('seconds', QUICK ? '0.2' : '1'));
  const rounds = Number(arg('rounds', QUICK ? '1' : '4'));
  const only = arg('suites', QUICK ? 'bridge-cost' : '');
  const all = suites(!QUICK && !process.argv.includes('--no-2x'));
  const chosen = all.filter((s) => !only || only.split(',').includes(s.name));
  const loadAtStart = loadavg();
  const dir = mkdtempSync(join(tmpdir(), 'myelin-python-bridge-bench-'));
  const load = owned.add(forkLoadGenerator(SELF));
  owned.stopOnSignals();
  const rows: Row[] = [];
  const ratios: Ratio[] = [];
  const servers: Record<string, unknown> = {};
  let inproc: Record<string, { predictUs: number; withJsonUs: number }> = {};
  try {
    if (chosen.some((s) => s.name === 'sklearn' || s.name === 'bridge-cost')) {
      const inSeconds = QUICK ? 0.1 : 1;
      inproc = {
        ...(chosen.some((s) => s.name === 'sklearn') || !QUICK ? { sklearn: inProcess(SKLEARN_PREDICTOR, SKLEARN_CONFIG, IRIS_BODY, inSeconds) } : {}),
        echo: inProcess(join(PY_DIR, 'echo_predictor.py'), {}, IRIS_BODY, inSeconds),
      };
    }
    for (const suite of chosen) {
      console.log(`\n== ${suite.name}`);
      await runSuite(suite, load, dir, seconds, rounds, rows, ratios, servers);
    }
  } finally {
    await owned.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  console.log('\nratios (variant ÷ reference, same run; goal for the sklearn suite: myelin 1x1 rps ≥ 1.5 × and p50 ≤ 1 × each baseline):');
  console.log(
    table(
      ['suite', 'variant', 'reference', 'conc', 'rps ratio', 'median paired', 'mean ratio', 'p50 ratio', 'p99 ratio', 'cpu/req ratio', 'goal'],
      ratios.map((x) => [
        x.suite,
        x.variant,
        x.reference,
        String(x.concurrency),
        x.throughputRatio.toFixed(2),
        x.pairedThroughputRatio.toFixed(2),
        x.meanRatio.toFixed(2),
        x.p50Ratio.toFixed(2),
        x.p99Ratio.toFixed(2),
        x.cpuPerRequestRatio.toFixed(2),
        isGoal(x) ? (goalMet(x) ? 'met' : 'NOT met') : '',
      ]),
    ),
  );
  const goal = ratios.filter(isGoal).map((x) => ({ reference: x.reference, concurrency: x.concurrency, throughputRatio: x.throughputRatio, p50Ratio: x.p50Ratio, met: goalMet(x) }));
  for (const reference of new Set(goal.map((g) => g.reference))) {
    const mine = goal.filter((g) => g.reference === reference);
    console.log(`goal vs ${reference}: ${mine.every((g) => g.met) ? 'met' : 'NOT met'} (${mine.map((g) => `c${g.concurrency} ${g.throughputRatio.toFixed(2)}× rps, p50 ${g.p50Ratio.toFixed(2)}×`).join('; ')})`);
  }

  const row = (suite: string, variant: string, c: number): Row | undefined => rows.find((r) => r.suite === suite && r.variant === variant && r.concurrency === c);
  const ts = row('bridge-cost', 'typescript echo', 1);
  const py = row('bridge-cost', 'python echo (bridge)', 1);
  const bridgeCost =
    ts && py
      ? {
          meanLatencyDeltaUs: (py.meanMs - ts.meanMs) * 1000,
          p50DeltaUs: (py.p50Ms - ts.p50Ms) * 1000,
          serverCpuDeltaUsPerRequest: py.serverCpuUsPerRequest - ts.serverCpuUsPerRequest,
          pythonEchoInProcessUs: inproc.echo,
        }
      : undefined;
  if (bridgeCost) {
    console.log('\nthe bridge’s own cost per request (python echo − typescript echo, replica, concurrency 1):');
    console.log(
      table(
        ['measure', 'µs'],
        [
          ['mean latency Δ', bridgeCost.meanLatencyDeltaUs.toFixed(0)],
          ['p50 latency Δ', bridgeCost.p50DeltaUs.toFixed(0)],
          ['server cpu/request Δ (replica + python)', bridgeCost.serverCpuDeltaUsPerRequest.toFixed(0)],
          ['for reference: python echo in-process, predict + json.loads/dumps', bridgeCost.pythonEchoInProcessUs.withJsonUs.toFixed(1)],
        ],
      ),
    );
  }
  if (inproc.sklearn) console.log(`\nsklearn predict in-process: ${inproc.sklearn.predictUs.toFixed(0)} µs per call, ${inproc.sklearn.withJsonUs.toFixed(0)} µs with json.loads/dumps`);

  const elapsedS = (performance.now() - t0) / 1000;
  const out = writeResults('python-bridge', {
    python: PYTHON,
    loadAverage: { start: loadAtStart, end: loadavg() },
    secondsPerLeg: seconds,
    rounds,
    elapsedS,
    servers,
    rows,
    ratios,
    goal,
    bridgeCost,
    inProcess: inproc,
    headline: ratios.map((x) => ({
      metric: `${x.suite}: ${x.variant} c=${x.concurrency} req/s`,
      ratio: x.pairedThroughputRatio,
      baseline: x.reference,
      ...(isGoal(x) ? { aim: 1.5 } : {}),
    })),
  });
  console.log(`\nwrote ${out} (${elapsedS.toFixed(0)} s)`);
}

const role = arg('role', 'main');
if (role === 'load') serveLoadCommands();
else await main();
