/**
 * Scale from zero: an iris API (examples/iris-onnx, its predictor.ts over the ONNX model) scaled to
 * zero replicas answers its next request through the gateway — held there, the autoscaler poked, one
 * replica started, the request released to it — against the replica's own cold start measured in
 * the same run (issue 14; goal: zero → first answer ≤ 2× the cold start).
 *
 * Legs, alternating per round (one replica process at a time):
 * - `cold start`: the replica entry the daemon runs, spawned directly with the same API (a spec file
 *   as the local orchestrator writes it), timed from just before spawn to the first 200 to the
 *   sample, polling with a fresh connection every 5 ms: the floor any start from zero pays;
 * - `zero → first answer`: a daemon in this process (local target, embedded transport, defaults but
 *   a 1 s tick, window and downscale stabilization so the API returns to zero in seconds) with the API
 *   at zero replicas and none running; timed from just before one POST of the sample to the gateway
 *   until its 200. The poke and `replica.ready` events give the breakdown.
 * Medians over rounds; the ratio is zero → first answer ÷ cold start. Loopback only; every process is
 * ended by PID (the daemon stops its replicas), also on failure or a signal.
 *
 *   node --import tsx benchmarks/scale-from-zero.bench.ts [--rounds 5] [--quick]
 *
 * `--quick`: one round (a bounded smoke run; its figures are not measurements). Prints a table and
 * writes benchmarks/results/scale-from-zero.json.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { EngineEvent } from '../core/events/engine-event.js';
import { linkPackageInto } from '../adapters/fs/package-root.js';
import { packProject } from '../serving/daemon/project-bundle.js';
import { REPLICA_ENTRY, runDaemon, type RunningDaemon } from '../serving/daemon/run-daemon.js';
import { apiSpecFixture } from '../test/harness/api-spec-fixture.js';
import { freePort } from '../test/harness/gateway-replicas.js';
import { arg, median, table, writeResults } from './harness/bench-util.js';
import { OwnedProcesses, spawnReplica } from './harness/server-processes.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EXAMPLE = join(ROOT, 'examples/iris-onnx');
const SAMPLE = readFileSync(join(EXAMPLE, 'sample.json'), 'utf8');
const quick = process.argv.includes('--quick');
const ROUNDS = Math.max(1, Number(arg('rounds', quick ? '1' : '5')));
const LEG_TIMEOUT_MS = 60_000;
const API = 'iris-zero';
const LABELS = ['setosa', 'versicolor', 'virginica'];

/** The example's API, able to scale to zero, starting there, and back at zero a few seconds after its last request. */
const CONFIG = `- name: ${API}
  kind: RealtimeAPI
  predictor:
    type: onnx
    path: predictor.ts
    model_path: model/iris.onnx
    config:
      labels: [${LABELS.join(', ')}]
  compute:
    cpu: 200m
  autoscaling:
    min_replicas: 0
    init_replicas: 0
    max_replicas: 2
    tick: 1s
    window: 1s
    downscale_stabilization_period: 1s
`;

const owned = new OwnedProcesses();

/** POST `body` on a fresh connection; the status, 0 when the connection fails. */
function post(host: string, port: number, path: string, body: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      { host, port, path, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = performance.now() + LEG_TIMEOUT_MS;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${LEG_TIMEOUT_MS / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The replica the daemon would start for the API (its spec file, its project folder), spawned directly: spawn → first 200. */
async function coldStart(dir: string): Promise<number> {
  const project = join(dir, 'cold-project');
  const specFile = join(dir, 'cold-spec.json');
  const spec = apiSpecFixture({
    name: 'iris-cold',
    predictor: { type: 'onnx', path: join(project, 'predictor.ts'), modelPath: join(project, 'model/iris.onnx'), config: { labels: LABELS } },
  });
  writeFileSync(specFile, JSON.stringify({ ...spec, projectDir: project }));
  const port = await freePort();
  const t0 = performance.now();
  const proc = owned.add(spawnReplica(specFile, { entry: REPLICA_ENTRY, env: { MYELIN_PORT: String(port) }, cwd: project }));
  proc.stdout?.resume();
  try {
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`the replica exited before it answered (${proc.signalCode ?? proc.exitCode})`);
      if (performance.now() - t0 > LEG_TIMEOUT_MS) throw new Error(`the replica did not answer within ${LEG_TIMEOUT_MS / 1000} s`);
      const status = await post('127.0.0.1', port, '/predict', SAMPLE);
      if (status === 200) return performance.now() - t0;
      if (status !== 0 && status !== 503) throw new Error(`the replica answered ${status}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    await owned.stop([proc]);
  }
}

interface ZeroSample {
  readonly totalMs: number;
  /** From the request to the `scaling.poke` event, ms. */
  readonly pokeMs: number;
  /** From the request to `replica.ready`, ms. */
  readonly readyMs: number;
}

async function fromZero(d: RunningDaemon, events: EngineEvent[]): Promise<ZeroSample> {
  // At zero with no replica process left (the previous one stopped).
  await waitFor(`${API} at zero replicas`, async () => {
    const g = await d.daemon.get(API);
    return g.status === 'scaled to zero' && g.replicas.length === 0;
  });
  const url = new URL((await d.daemon.get(API)).url);
  const since = events.length;
  const wall0 = Date.now();
  const t0 = performance.now();
  const status = await post(url.hostname, Number(url.port), url.pathname, SAMPLE);
  const totalMs = performance.now() - t0;
  if (status !== 200) throw new Error(`the request at zero was answered ${status}`);
  const later = events.slice(since);
  const at = (type: string): number => {
    const e = later.find((x) => x.type === type && x.api === API);
    return e === undefined ? Number.NaN : e.t - wall0;
  };
  return { totalMs, pokeMs: at('scaling.poke'), readyMs: at('replica.ready') };
}

async function main(): Promise<void> {
  owned.stopOnSignals();
  const dir = mkdtempSync(join(tmpdir(), 'myelin-bench-zero-'));
  cpSync(EXAMPLE, join(dir, 'cold-project'), { recursive: true });
  linkPackageInto(dir);
  const project = join(dir, 'project');
  cpSync(EXAMPLE, project, { recursive: true });
  writeFileSync(join(project, 'myelin.yaml'), CONFIG);
  const d = await runDaemon({
    stateDir: join(dir, 'state'),
    target: 'local',
    host: '127.0.0.1',
    port: 0,
    gatewayHost: '127.0.0.1',
    gatewayPort: 0,
    log: pino({ level: 'warn' }, pino.destination({ dest: join(dir, 'daemon.log'), sync: true })),
  });
  const events: EngineEvent[] = [];
  const sub = d.daemon.events$({}).subscribe((e) => events.push(e));
  const cold: number[] = [];
  const zero: ZeroSample[] = [];
  try {
    await d.daemon.deploy(await packProject(project, 'myelin.yaml'), { force: true });
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which leg goes first, so neither always meets a cold page cache.
      if (round % 2 === 0) {
        cold.push(await coldStart(dir));
        zero.push(await fromZero(d, events));
      } else {
        zero.push(await fromZero(d, events));
        cold.push(await coldStart(dir));
      }
    }
  } finally {
    sub.unsubscribe();
    await d.stop();
    await owned.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const coldMs = median(cold);
  const zeroMs = median(zero.map((z) => z.totalMs));
  const ratio = zeroMs / coldMs;
  const rows = [
    { leg: 'replica cold start (spawn → first 200)', medianMs: Math.round(coldMs), rounds: cold.map(Math.round) },
    { leg: 'zero → first answer (gateway, held)', medianMs: Math.round(zeroMs), rounds: zero.map((z) => Math.round(z.totalMs)) },
  ];
  console.log(
    table(
      ['leg', 'median (ms)', 'rounds (ms)'],
      rows.map((r) => [r.leg, String(r.medianMs), r.rounds.join(' ')]),
    ),
  );
  const pokeMs = median(zero.map((z) => z.pokeMs).filter(Number.isFinite));
  const readyMs = median(zero.map((z) => z.readyMs).filter(Number.isFinite));
  console.log(`\nzero → first answer ÷ cold start: ${ratio.toFixed(2)} (goal ≤ 2)${quick ? ' [--quick: not a measurement]' : ''}`);
  console.log(`breakdown (median ms after the request): poke ${Math.round(pokeMs)}, replica ready ${Math.round(readyMs)}, answer ${Math.round(zeroMs)}`);
  const file = writeResults('scale-from-zero', {
    rounds: ROUNDS,
    goals: { ratio: 2 },
    rows,
    ratio: Number(ratio.toFixed(2)),
    goalMet: ratio <= 2,
    breakdownMs: { poke: Math.round(pokeMs), replicaReady: Math.round(readyMs), answer: Math.round(zeroMs) },
    headline: [{ metric: 'iris zero → first answer', ratio: Number(ratio.toFixed(2)), baseline: 'replica cold start (spawn → first 200), same run', aim: 2, higherIsBetter: false }],
  });
  console.log(`\nwrote ${file}`);
}

await main();
