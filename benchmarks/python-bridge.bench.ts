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
 * Processes, as benchmarks/serving.bench.ts: each server is a child (the replica through its real entry,
 * serving/replica/replica-entry.mjs, with an IPC channel as the local orchestrator gives it; the
 * baseline as `python3 fastapi_baseline.py`), and the load generator is another child (`--role load`:
 * a keep-alive agent, `concurrency` closed loops of POSTs). Per suite every server is started and warmed
 * up, then for each concurrency the legs run in `--rounds` rounds, each server once per round for
 * `--seconds` after a short warm-up, the order rotating per round; the rounds of a server are merged
 * (requests over total time, percentiles over all latencies) and the throughput ratio is also the
 * median over rounds of the ratio within a round. Server CPU per request is read from /proc (Linux) for
 * the server process and all its descendants (the replica's Python workers). Loopback only, bounded in
 * time (defaults: about 3 minutes); every process started is ended by PID at the end, also on failure.
 *
 *   ONNXRUNTIME_NODE_INSTALL=skip node --import tsx benchmarks/python-bridge.bench.ts \
 *     [--seconds 1] [--rounds 4] [--suites sklearn,onnx,bridge-cost] [--no-2x]
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
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiSpecFixture, type ApiSpecOverrides } from '../test/harness/api-spec-fixture.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const REPLICA_ENTRY = join(ROOT, 'serving/replica/replica-entry.mjs');
const PY_DIR = join(ROOT, 'benchmarks/python');
const PYTHON = process.env.MYELIN_PYTHON || (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const WARMUP_MS = 300;
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

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

// ---------------------------------------------------------------------------------------------
// Role: load generator (child). Receives legs over IPC, answers with latencies.

interface LoadCommand {
  readonly port: number;
  readonly body: string;
  readonly contentType: string;
  readonly concurrency: number;
  readonly durationMs: number;
  readonly warmupMs: number;
}
interface LegSamples {
  readonly latenciesMs: number[];
  readonly errors: number;
  readonly elapsedS: number;
  readonly requestsTotal: number;
  /** Fewest and most requests one connection (closed loop) completed in the leg: a fair server keeps them close. */
  readonly perConnectionMin: number;
  readonly perConnectionMax: number;
  serverCpuUs?: number;
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
  const warmEnd = performance.now() + cmd.warmupMs;
  const end = warmEnd + cmd.durationMs;
  let measuredStart = 0;
  const perConnection: number[] = [];
  const loop = async (_: unknown, i: number): Promise<void> => {
    perConnection[i] = 0;
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) return;
      const ok = await one();
      const t1 = performance.now();
      total++;
      // Counted by when it ends: a request a server kept waiting since the warm-up (uvicorn does not
      // serve its connections in turn) counts with its whole wait, not left out.
      if (t1 >= warmEnd) {
        perConnection[i]++;
        if (ok) latencies.push(t1 - t0);
        else errors++;
      }
    }
  };
  setTimeout(() => (measuredStart = performance.now()), cmd.warmupMs);
  await Promise.all(Array.from({ length: cmd.concurrency }, loop));
  const elapsedS = (performance.now() - (measuredStart || warmEnd)) / 1000;
  agent.destroy();
  return { latenciesMs: latencies, errors, elapsedS, requestsTotal: total, perConnectionMin: Math.min(...perConnection), perConnectionMax: Math.max(...perConnection) };
}

// ---------------------------------------------------------------------------------------------
// Processes: start, watch over /proc, end by PID

interface Server {
  readonly variant: Variant;
  readonly proc: ChildProcess;
  readonly port: number;
  /** What the server said about itself when it listened (the baseline: uvicorn's http/loop, versions). */
  readonly info: Record<string, unknown>;
  /** A sample answer to the suite's body (checked to be the same answer across a suite's servers). */
  sample?: string;
}

/** Every child this process started, and every descendant seen (pid → start time), for the final clean-up. */
const started = new Set<ChildProcess>();
const seenDescendants = new Map<number, string>();

function statFields(pid: number): string[] | undefined {
  try {
    // Fields after "(comm) ": field 3 (state) is index 0, so field n is index n − 3.
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)!.split(' ');
  } catch {
    return undefined;
  }
}

/** `pid` and all its live descendants (Linux /proc; `[pid]` elsewhere). */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return [pid];
  }
  for (const e of entries) {
    const f = statFields(Number(e));
    if (!f) continue;
    const ppid = Number(f[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(e));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** CPU time (user + system, µs) of a process and its live descendants, from /proc (Linux); 0 elsewhere. */
function treeCpuUs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  let ticks = 0;
  for (const p of processTree(pid)) {
    const f = statFields(p);
    if (!f) continue;
    // utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux); starttime is 22.
    ticks += Number(f[11]) + Number(f[12]);
    if (p !== pid) seenDescendants.set(p, f[19]);
  }
  return (ticks / 100) * 1e6;
}

function firstListening(proc: ChildProcess, what: string): Promise<{ port: number; info: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    let out = '';
    let done = false;
    const timer = setTimeout(() => finish(new Error(`${what} did not listen within 90 s`)), 90_000);
    const finish = (err: Error | undefined, port?: number, info: Record<string, unknown> = {}): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve({ port: port!, info });
    };
    proc.on('message', (m: { type?: string; port?: number }) => {
      if (m?.type === 'myelin.replica.listening' && m.port) finish(undefined, m.port, m);
    });
    proc.stdout?.setEncoding('utf8').on('data', (c: string) => {
      // Read to the end (a pipe left unread would block the child); look for the line only until found.
      if (done) return;
      out += c;
      const line = out.split('\n').find((l) => l.includes('"myelin.replica.listening"'));
      if (line) {
        const info = JSON.parse(line) as Record<string, unknown> & { port: number };
        finish(undefined, info.port, info);
      }
    });
    proc.on('exit', (code, signal) => finish(new Error(`${what} exited early (${signal ?? `code ${code}`})`)));
    proc.on('error', (err) => finish(new Error(`${what} could not start: ${err.message}`)));
  });
}

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

function post(port: number, body: string, contentType: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/predict', method: 'POST', agent: false, headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Polls the replica's readiness (the predictor loads after it listens); a deadline, never forever. */
async function waitReady(server: Server): Promise<void> {
  const end = Date.now() + 90_000;
  while ((await get(server.port, '/healthz/ready')) !== 200) {
    if (server.proc.exitCode !== null) throw new Error(`${server.variant.name} exited before it was ready`);
    if (Date.now() > end) throw new Error(`${server.variant.name} not ready within 90 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

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
    const env: NodeJS.ProcessEnv = { ...process.env, MYELIN_SPEC_FILE: specFile, MYELIN_PORT: '0', MYELIN_LOG_LEVEL: 'warn', MYELIN_PYTHON: PYTHON };
    if (variant.executor) env.MYELIN_EXECUTOR = variant.executor;
    else delete env.MYELIN_EXECUTOR;
    proc = spawn(process.execPath, [REPLICA_ENTRY], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], env });
    // The IPC metric samples are read and dropped, as the daemon would read them.
    proc.on('message', () => {});
  } else {
    proc = spawn(
      PYTHON,
      [join(PY_DIR, 'fastapi_baseline.py'), '--predictor', variant.predictor, '--config', JSON.stringify(variant.config), '--threads', String(variant.threads), '--flavour', variant.flavour],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } },
    );
  }
  started.add(proc);
  // The last lines the server printed (the replica logs on stdout), to say why it did not start.
  let tail = '';
  proc.stdout?.on('data', (c: string | Buffer) => (tail = (tail + String(c)).slice(-4000)));
  const why = (err: Error): Error => new Error(`${err.message}\n--- last output of ${variant.name}:\n${tail.trim()}`, { cause: err });
  try {
    const { port, info } = await firstListening(proc, variant.name);
    const server: Server = { variant, proc, port, info };
    if (variant.kind === 'replica') await waitReady(server);
    const answer = await post(port, suite.body, suite.contentType);
    if (answer.status !== 200) throw new Error(`${variant.name} answered ${answer.status} to the sample: ${answer.text.slice(0, 500)}`);
    server.sample = answer.text;
    return server;
  } catch (err) {
    throw why(err as Error);
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; then SIGKILL any descendant seen that is still the same process. */
async function stopAll(procs: Iterable<ChildProcess>, graceMs = 5_000): Promise<void> {
  const list = [...procs];
  await Promise.all(
    list.map(async (p) => {
      if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      started.delete(p);
    }),
  );
  killStrayDescendants();
}

/** The replica's Python workers exit when their pipe closes; any still running (same pid and start time) is killed. */
function killStrayDescendants(): void {
  for (const [pid, startTime] of seenDescendants) {
    const f = statFields(pid);
    if (f && f[19] === startTime) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone in between.
      }
    }
    if (!f || f[19] === startTime) seenDescendants.delete(pid);
  }
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
// Statistics and tables

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
  readonly suite: string;
  readonly variant: string;
  readonly concurrency: number;
  readonly requests: number;
  readonly errors: number;
  readonly rps: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Over the legs: the fewest and the most requests a connection completed in one leg (fairness). */
  readonly perConnectionMin: number;
  readonly perConnectionMax: number;
  /** Server process and its descendants (the Python workers), over every request sent (warm-up included). */
  readonly serverCpuUsPerRequest: number;
}

function merge(suite: string, variant: string, concurrency: number, legs: readonly LegSamples[]): Row {
  const all = legs.flatMap((l) => l.latenciesMs).sort((a, b) => a - b);
  const seconds = legs.reduce((s, l) => s + l.elapsedS, 0);
  const cpu = legs.reduce((s, l) => s + (l.serverCpuUs ?? 0), 0);
  const total = legs.reduce((s, l) => s + l.requestsTotal, 0);
  return {
    suite,
    variant,
    concurrency,
    requests: all.length,
    errors: legs.reduce((s, l) => s + l.errors, 0),
    rps: all.length / seconds,
    meanMs: all.reduce((s, x) => s + x, 0) / all.length,
    p50Ms: percentile(all, 50),
    p99Ms: percentile(all, 99),
    maxMs: all.at(-1) ?? Number.NaN,
    perConnectionMin: Math.min(...legs.map((l) => l.perConnectionMin)),
    perConnectionMax: Math.max(...legs.map((l) => l.perConnectionMax)),
    serverCpuUsPerRequest: total > 0 ? cpu / total : Number.NaN,
  };
}

interface Ratio {
  readonly suite: string;
  readonly variant: string;
  readonly reference: string;
  readonly concurrency: number;
  /** Merged requests per second, variant ÷ reference. */
  readonly throughputRatio: number;
  /** Median over rounds of (variant ÷ reference) within one round. */
  readonly pairedThroughputRatio: number;
  /** Mean latency of the measured requests, variant ÷ reference. */
  readonly meanRatio: number;
  readonly p50Ratio: number;
  readonly p99Ratio: number;
  readonly cpuPerRequestRatio: number;
}

/** The issue's goal applies to the sklearn suite's myelin 1 × 1 against each FastAPI baseline. */
function isGoal(x: Ratio): boolean {
  return x.suite === 'sklearn' && x.variant === 'myelin 1x1';
}

/** ≥ 1.5 × the baseline's throughput, with p50 no worse. */
function goalMet(x: Ratio): boolean {
  return x.throughputRatio >= 1.5 && x.p50Ratio <= 1;
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
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

function leg(load: ChildProcess, cmd: LoadCommand): Promise<LegSamples> {
  return new Promise((resolve, reject) => {
    const onExit = (): void => reject(new Error('the load generator exited'));
    load.once('exit', onExit);
    load.once('message', (m) => {
      load.off('exit', onExit);
      resolve(m as LegSamples);
    });
    load.send(cmd);
  });
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
    for (const concurrency of suite.concurrencies) {
      const legs = new Map<string, LegSamples[]>(servers.map((s) => [s.variant.name, []]));
      for (let r = 0; r < rounds; r++) {
        // Rotate the order each round, so no server always runs first (or always after another).
        const order = servers.map((_, i) => servers[(i + r + concurrency) % servers.length]);
        for (const s of order) {
          const c0 = treeCpuUs(s.proc.pid);
          const cmd = { port: s.port, body: suite.body, contentType: suite.contentType, concurrency, durationMs: seconds * suite.secondsFactor * 1000, warmupMs: WARMUP_MS };
          const samples = await leg(load, cmd);
          samples.serverCpuUs = treeCpuUs(s.proc.pid) - c0;
          legs.get(s.variant.name)!.push(samples);
        }
      }
      const group = servers.map((s) => merge(suite.name, s.variant.name, concurrency, legs.get(s.variant.name)!));
      rows.push(...group);
      printRows(group);
      for (const { variant, reference } of suite.ratios) {
        const mine = group.find((g) => g.variant === variant)!;
        const base = group.find((g) => g.variant === reference)!;
        const ml = legs.get(variant)!;
        const bl = legs.get(reference)!;
        ratios.push({
          suite: suite.name,
          variant,
          reference,
          concurrency,
          throughputRatio: mine.rps / base.rps,
          // The legs of one round run back to back, so a burst of load from other processes hits both sides of a pair.
          pairedThroughputRatio: median(ml.map((l, i) => l.latenciesMs.length / l.elapsedS / (bl[i].latenciesMs.length / bl[i].elapsedS))),
          meanRatio: mine.meanMs / base.meanMs,
          p50Ratio: mine.p50Ms / base.p50Ms,
          p99Ratio: mine.p99Ms / base.p99Ms,
          cpuPerRequestRatio: mine.serverCpuUsPerRequest / base.serverCpuUsPerRequest,
        });
      }
    }
  } finally {
    await stopAll(servers.map((s) => s.proc));
    // A server that failed to start is not in `servers` yet: end every child but the load generator.
    await stopAll([...started].filter((p) => p !== load));
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const seconds = Number(arg('seconds', '1'));
  const rounds = Number(arg('rounds', '4'));
  const only = arg('suites', '');
  const all = suites(!process.argv.includes('--no-2x'));
  const chosen = all.filter((s) => !only || only.split(',').includes(s.name));
  const loadAtStart = loadavg();
  const dir = mkdtempSync(join(tmpdir(), 'myelin-python-bridge-bench-'));
  const load = fork(SELF, ['--role', 'load'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  started.add(load);
  const onSignal = (sig: NodeJS.Signals): void => {
    void stopAll(started, 1_000).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const rows: Row[] = [];
  const ratios: Ratio[] = [];
  const servers: Record<string, unknown> = {};
  let inproc: Record<string, { predictUs: number; withJsonUs: number }> = {};
  try {
    if (chosen.some((s) => s.name === 'sklearn' || s.name === 'bridge-cost')) {
      inproc = {
        sklearn: inProcess(SKLEARN_PREDICTOR, SKLEARN_CONFIG, IRIS_BODY, 1),
        echo: inProcess(join(PY_DIR, 'echo_predictor.py'), {}, IRIS_BODY, 1),
      };
    }
    for (const suite of chosen) {
      console.log(`\n== ${suite.name}`);
      await runSuite(suite, load, dir, seconds, rounds, rows, ratios, servers);
    }
  } finally {
    await stopAll(started);
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
  const out = join(ROOT, 'benchmarks/results/python-bridge.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        python: PYTHON,
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model,
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
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nwrote ${out} (${elapsedS.toFixed(0)} s)`);
}

const role = arg('role', 'main');
if (role === 'load') {
  process.on('message', (cmd: LoadCommand) => {
    void runLoad(cmd).then((r) => process.send!(r));
  });
  // Ends with its parent: the IPC channel closing means the bench is gone.
  process.on('disconnect', () => process.exit(0));
} else {
  await main();
}
