/**
 * Throughput and latency through the gateway versus straight to the replica, in the same run.
 *
 * Three processes: the replica (a child: by default the real serving replica with a trivial
 * javascript predictor; `--replica plain` uses a bare node:http server answering a small JSON body),
 * the gateway (this process, routing one API to that replica), and the load generator (a child with a
 * keep-alive agent, `concurrency` closed loops of POSTs). For each concurrency (1, 8, 64) the load
 * generator runs `--rounds` triples of legs, one straight to the replica, one through the gateway and
 * one through a minimal hand-written node:http reverse proxy in the same process as the gateway (a
 * keep-alive agent, the request and the response piped through: what a proxy costs in Node before
 * any of the gateway's work; `--no-minimal` leaves it out), each for `--seconds` after a short
 * warm-up, the order rotating per round; the rounds of each side are merged (requests over total
 * time, percentiles over all latencies). Loopback only, bounded in time (defaults: 3 × 4 × 3 legs of
 * 1.5 s ≈ 70 s).
 *
 *   node --import tsx benchmarks/gateway.bench.ts [--seconds 1.5] [--rounds 4] [--replica real|plain]  [--predict-ms 0]
 *     [--concurrency 1,8,64]
 *
 * `--predict-ms N` makes each prediction spin the replica's CPU for N ms (a model of that cost).
 *
 * Prints a table and writes benchmarks/results/gateway.json (or gateway-<variant>.json): ratios
 * gateway/direct (targets: ≥ 0.85 of direct throughput, ≤ +0.5 ms p50) and the CPU time per request
 * of each process — the figure that stays meaningful when other work shares the machine.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { BehaviorSubject } from 'rxjs';
import type { ReplicaInfo } from '../core/ports/orchestrator-target.js';
import { Gateway } from '../serving/gateway/gateway.js';
import { onDirectMessage, type DirectConnectionTarget } from '../serving/replica/direct-connections.js';

const SELF = fileURLToPath(import.meta.url);
const BODY = '{"sepal_length":5.2,"sepal_width":3.6,"petal_length":1.4,"petal_width":0.3}';
const CONCURRENCIES = [1, 8, 64] as const;
const WARMUP_MS = 300;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

/** What one leg of load measured, with every latency (ms) so rounds can be merged. */
interface LegSamples {
  readonly latenciesMs: number[];
  readonly errors: number;
  readonly elapsedS: number;
  /** Requests completed over the whole leg, warm-up included (the denominator of CPU per request). */
  readonly totalRequests: number;
  /** CPU time of the load generator over the whole leg, µs. */
  readonly loadCpuUs: number;
  /** Filled in by the main process: CPU time of the replica and of the gateway over the leg, µs. */
  replicaCpuUs?: number;
  gatewayCpuUs?: number;
}

/** Merged figures of one side (direct or gateway) over its rounds. */
interface LegResult {
  readonly requests: number;
  readonly errors: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU time per request, µs, of each process (gateway: 0 for the direct side). */
  readonly cpuUsPerRequest: { readonly load: number; readonly replica: number; readonly gateway: number };
}

interface LoadCommand {
  readonly port: number;
  readonly path: string;
  readonly concurrency: number;
  readonly durationMs: number;
}

// ---------------------------------------------------------------------------------------------
// Role: load generator (child). Closed loops over one keep-alive agent; answers each command over IPC.
async function runLoad(cmd: LoadCommand): Promise<LegSamples> {
  const agent = new Agent({ keepAlive: true, maxSockets: cmd.concurrency, maxFreeSockets: cmd.concurrency });
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  let total = 0;
  let errors = 0;
  let measuring = false;
  let stop = false;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const req = request(
        {
          host: '127.0.0.1',
          port: cmd.port,
          path: cmd.path,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': BODY.length },
        },
        (res) => {
          res.on('data', () => undefined);
          res.on('end', () => {
            total++;
            if (measuring) {
              if (res.statusCode === 200) latencies.push(performance.now() - t0);
              else errors++;
            }
            resolve();
          });
        },
      );
      req.on('error', () => {
        if (measuring) errors++;
        resolve();
      });
      req.end(BODY);
    });
  const loop = async (): Promise<void> => {
    while (!stop) await one();
  };
  const loops = Array.from({ length: cmd.concurrency }, loop);
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  measuring = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, cmd.durationMs));
  measuring = false;
  const elapsedS = (performance.now() - start) / 1000;
  stop = true;
  await Promise.all(loops);
  agent.destroy();
  const cpu = process.cpuUsage(cpu0);
  return { latenciesMs: latencies, errors, elapsedS, totalRequests: total, loadCpuUs: cpu.user + cpu.system };
}

function merge(rounds: readonly LegSamples[]): LegResult {
  const all = rounds.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
  const elapsedS = rounds.reduce((s, r) => s + r.elapsedS, 0);
  const q = (p: number): number => (all.length === 0 ? NaN : all[Math.min(all.length - 1, Math.floor(p * all.length))]);
  const total = rounds.reduce((s, r) => s + r.totalRequests, 0);
  const per = (f: (r: LegSamples) => number): number => rounds.reduce((s, r) => s + f(r), 0) / total;
  return {
    requests: all.length,
    errors: rounds.reduce((s, r) => s + r.errors, 0),
    rps: all.length / elapsedS,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    cpuUsPerRequest: { load: per((r) => r.loadCpuUs), replica: per((r) => r.replicaCpuUs ?? 0), gateway: per((r) => r.gatewayCpuUs ?? 0) },
  };
}

// ---------------------------------------------------------------------------------------------
// Role: replica (child). Prints `{"port":N,"kind":…}` on stdout once serving; answers CPU-time queries.
async function runReplica(kind: string, predictMs: number): Promise<void> {
  let target: DirectConnectionTarget | undefined;
  process.on('message', (m: unknown, handle: unknown) => {
    // Direct connections: a client connection the main process's gateway handed over.
    if (onDirectMessage(target, m, handle)) return;
    const c = process.cpuUsage();
    process.send!(c.user + c.system);
  });
  if (kind === 'real') {
    const dir = mkdtempSync(join(tmpdir(), 'myelin-gw-bench-'));
    const predictor = join(dir, 'predictor.mjs');
    writeFileSync(
      predictor,
      'export class Predictor {\n  predict({ payload }) {\n' +
        `    const until = performance.now() + ${predictMs};\n    while (performance.now() < until);\n` +
        '    return { label: "setosa" };\n  }\n}\n',
    );
    const { startReplica } = await import('../serving/replica/replica-server.js');
    const { apiSpecFixture } = await import('../test/harness/api-spec-fixture.js');
    const replica = await startReplica({
      spec: apiSpecFixture({ name: 'bench', predictor: { path: predictor } }),
      log: pino({ level: 'silent' }),
      executor: 'in-thread',
      reportDirect: (m) => process.send!(m),
    });
    await replica.ready;
    target = replica;
    process.stdout.write(`${JSON.stringify({ port: replica.address.port, kind })}\n`);
    process.on('disconnect', () => {
      void replica.close({ graceMs: 100 }).finally(() => {
        rmSync(dir, { recursive: true, force: true });
        process.exit(0);
      });
    });
    return;
  }
  const answer = Buffer.from('{"label":"setosa"}');
  const server = createServer((req, res) => {
    req.on('data', () => undefined);
    req.on('end', () => {
      const until = performance.now() + predictMs;
      while (performance.now() < until);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length });
      res.end(answer);
    });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port, kind })}\n`);
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------------
// The minimal reverse proxy: what forwarding costs in Node with nothing else (no routing table, stats,
// limits, retries, header filtering): node:http in, a keep-alive agent out, both bodies piped.
async function startMinimalProxy(replicaPort: number): Promise<{ port: number; close: () => Promise<void> }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 256 });
  const server = createServer((req, res) => {
    const up = request(
      { host: '127.0.0.1', port: replicaPort, method: req.method, path: '/predict', headers: req.headers, agent },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
        agent.destroy();
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Role: main. Starts the children and the gateway, runs the legs, prints and saves the results.
function spawnRole(role: string, extra: string[] = []): ChildProcess {
  return fork(SELF, ['--role', role, ...extra], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('child did not start within 30 s')), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(buf.slice(0, nl));
      }
    });
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before starting`)));
  });
}

function cpuOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    // Other messages (the replica's direct-connection reports) go by.
    const onMessage = (m: unknown): void => {
      if (typeof m !== 'number') return;
      child.off('message', onMessage);
      resolve(m);
    };
    child.on('message', onMessage);
    child.send('cpu');
  });
}

/** Runs one leg and adds the replica's and this process's (the gateway's) CPU time over it. */
async function measuredLeg(load: ChildProcess, replica: ChildProcess, cmd: LoadCommand): Promise<LegSamples> {
  const r0 = await cpuOf(replica);
  const g0 = process.cpuUsage();
  const leg = await command(load, cmd);
  const g = process.cpuUsage(g0);
  leg.replicaCpuUs = (await cpuOf(replica)) - r0;
  leg.gatewayCpuUs = cmd.path === '/predict' ? 0 : g.user + g.system;
  return leg;
}

function command(load: ChildProcess, cmd: LoadCommand): Promise<LegSamples> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null): void => reject(new Error(`load generator exited (${code})`));
    load.once('exit', onExit);
    load.once('message', (m) => {
      load.off('exit', onExit);
      resolve(m as LegSamples);
    });
    load.send(cmd);
  });
}

async function main(): Promise<void> {
  // --quick: a smoke run for test/benchmarks/quick.test.ts (one round of 0.2 s), not a figure.
  const quick = process.argv.includes('--quick');
  const seconds = Number(arg('seconds', quick ? '0.2' : '1.5'));
  const rounds = Number(arg('rounds', quick ? '1' : '4'));
  let replicaKind = arg('replica', 'real');
  if (replicaKind === 'real') {
    try {
      await import('../serving/replica/replica-server.js');
    } catch {
      replicaKind = 'plain';
    }
  }
  const predictMs = Number(arg('predict-ms', '0'));
  const replicaChild = spawnRole('replica', ['--kind', replicaKind, '--predict-ms', String(predictMs)]);
  const loadChild = spawnRole('load');
  const children = [replicaChild, loadChild];
  try {
    const replicaPort = (JSON.parse(await firstLine(replicaChild)) as { port: number }).port;
    await firstLine(loadChild);

    const replicas$ = new BehaviorSubject<readonly ReplicaInfo[]>([
      { id: 'bench-0', api: 'bench', revision: 'r1', state: 'ready', address: { host: '127.0.0.1', port: replicaPort }, createdAt: 0 },
    ]);
    const gateway = new Gateway({ host: '127.0.0.1', port: 0, replicas$ }, pino({ level: 'silent' }));
    await gateway.start();
    await gateway.upsertApi({
      name: 'bench',
      networking: { endpoint: '/bench', localPort: 8888, maxBodyBytes: 64 * 1024 * 1024 },
      autoscaling: { maxReplicaConcurrency: 1024 },
    });
    const gatewayPort = gateway.sharedPort();
    // The same gateway with direct connections (--no-direct leaves it out; the plain replica cannot take them).
    const withDirect = replicaKind === 'real' && !process.argv.includes('--no-direct');
    const directGateway = withDirect ? new Gateway({ host: '127.0.0.1', port: 0, replicas$, directConnections: true }, pino({ level: 'silent' })) : null;
    if (directGateway !== null) {
      directGateway.attachReplicaChannel('bench-0', replicaChild);
      await directGateway.start();
      await directGateway.upsertApi({
        name: 'bench',
        networking: { endpoint: '/bench', localPort: 8888, maxBodyBytes: 64 * 1024 * 1024 },
        autoscaling: { maxReplicaConcurrency: 1024 },
      });
    }
    const minimal = process.argv.includes('--no-minimal') ? null : await startMinimalProxy(replicaPort);

    const legs: Array<{
      concurrency: number;
      direct: LegResult;
      gateway: LegResult;
      minimal: LegResult | null;
      /** Through the gateway with direct connections (its first request hands the connection to the replica). */
      directConnections: LegResult | null;
      directConnectionsRatio: number | null;
      throughputRatio: number;
      p50DeltaMs: number;
      p99DeltaMs: number;
      /** Gateway ÷ the minimal proxy: what the gateway's own work costs on top of proxying in Node. */
      ratioToMinimalProxy: number | null;
      minimalThroughputRatio: number | null;
    }> = [];
    const legMs = seconds * 1000;
    const only = arg('concurrency', '');
    const concurrencies = only === '' ? CONCURRENCIES : only.split(',').map(Number);
    for (const concurrency of concurrencies) {
      // Alternate the order of the two legs round by round and merge the rounds, so a change in the
      // machine's background load hits both sides alike.
      const direct: LegSamples[] = [];
      const through: LegSamples[] = [];
      const viaMinimal: LegSamples[] = [];
      const viaDirect: LegSamples[] = [];
      const sides: Array<{ name: string; port: number; path: string; into: LegSamples[] }> = [
        { name: 'direct', port: replicaPort, path: '/predict', into: direct },
        { name: 'gateway', port: gatewayPort, path: '/bench', into: through },
      ];
      if (minimal !== null) sides.push({ name: 'minimal', port: minimal.port, path: '/proxy', into: viaMinimal });
      if (directGateway !== null) sides.push({ name: 'direct-connections', port: directGateway.sharedPort(), path: '/bench', into: viaDirect });
      // --profile-side gateway|minimal|direct-connections: only that side runs (for a CPU profile of this process); ratios then read NaN.
      const profiled = arg('profile-side', '');
      if (profiled !== '') sides.splice(0, sides.length, ...sides.filter((x) => x.name === profiled));
      for (let r = 0; r < rounds; r++) {
        for (let k = 0; k < sides.length; k++) {
          const side = sides[(k + r) % sides.length];
          side.into.push(await measuredLeg(loadChild, replicaChild, { port: side.port, path: side.path, concurrency, durationMs: legMs }));
        }
      }
      const dm = merge(direct);
      const gm = merge(through);
      const mm = minimal === null ? null : merge(viaMinimal);
      const xm = directGateway === null ? null : merge(viaDirect);
      legs.push({
        concurrency,
        direct: dm,
        gateway: gm,
        minimal: mm,
        directConnections: xm,
        directConnectionsRatio: xm === null ? null : xm.rps / dm.rps,
        ratioToMinimalProxy: mm === null ? null : gm.rps / mm.rps,
        minimalThroughputRatio: mm === null ? null : mm.rps / dm.rps,
        throughputRatio: gm.rps / dm.rps,
        p50DeltaMs: gm.p50Ms - dm.p50Ms,
        p99DeltaMs: gm.p99Ms - dm.p99Ms,
      });
    }
    await gateway.close();
    await directGateway?.close();
    await minimal?.close();

    const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '-');
    const rows = [
      ['conc', 'direct req/s', 'gateway req/s', 'ratio', 'minimal proxy req/s', 'ratio', 'gw ÷ minimal', 'direct p50', 'gw p50', 'Δp50 ms', 'direct p99', 'gw p99', 'direct-conn req/s', 'ratio', 'Δp50 ms', 'errors'],
      ...legs.map((l) => [
        String(l.concurrency),
        f(l.direct.rps, 0),
        f(l.gateway.rps, 0),
        f(l.throughputRatio),
        f(l.minimal?.rps ?? NaN, 0),
        f(l.minimalThroughputRatio ?? NaN),
        f(l.ratioToMinimalProxy ?? NaN),
        f(l.direct.p50Ms, 3),
        f(l.gateway.p50Ms, 3),
        f(l.p50DeltaMs, 3),
        f(l.direct.p99Ms, 3),
        f(l.gateway.p99Ms, 3),
        f(l.directConnections?.rps ?? NaN, 0),
        f(l.directConnectionsRatio ?? NaN),
        f(l.directConnections === null ? NaN : l.directConnections.p50Ms - l.direct.p50Ms, 3),
        String(l.direct.errors + l.gateway.errors + (l.minimal?.errors ?? 0) + (l.directConnections?.errors ?? 0)),
      ]),
    ];
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    console.log(
      `gateway vs direct — replica: ${replicaKind}, predict ${predictMs} ms, ${rounds} rounds × ${seconds} s per side, ${cpus().length} cpus, node ${process.version}`,
    );
    for (const r of rows) console.log(r.map((c, i) => c.padStart(widths[i])).join('  '));
    const cpuRows = [
      ['conc', 'cpu µs/req: load', 'replica', 'direct total', 'gw: load', 'replica', 'gateway', 'gw total', 'cpu-bound ratio', 'minimal proxy'],
      ...legs.map((l) => {
        const d = l.direct.cpuUsPerRequest;
        const g = l.gateway.cpuUsPerRequest;
        const dt = d.load + d.replica;
        const gt = g.load + g.replica + g.gateway;
        return [String(l.concurrency), f(d.load, 1), f(d.replica, 1), f(dt, 1), f(g.load, 1), f(g.replica, 1), f(g.gateway, 1), f(gt, 1), f(dt / gt), f(l.minimal?.cpuUsPerRequest.gateway ?? NaN, 1)];
      }),
    ];
    const cw = cpuRows[0].map((_, i) => Math.max(...cpuRows.map((r) => r[i].length)));
    for (const r of cpuRows) console.log(r.map((c, i) => c.padStart(cw[i])).join('  '));

    const out = {
      bench: 'gateway',
      replica: replicaKind,
      predictMs,
      secondsPerLeg: seconds,
      rounds,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      targets: { throughputRatioMin: 0.85, p50DeltaMsMax: 0.5 },
      legs: legs.map((l) => ({
        ...l,
        // If every process were CPU-bound on the same cores: (direct CPU per request) / (through-gateway CPU per request).
        cpuBoundThroughputRatio:
          (l.direct.cpuUsPerRequest.load + l.direct.cpuUsPerRequest.replica) /
          (l.gateway.cpuUsPerRequest.load + l.gateway.cpuUsPerRequest.replica + l.gateway.cpuUsPerRequest.gateway),
      })),
      metTargets: legs.every((l) => l.throughputRatio >= 0.85 && l.p50DeltaMs <= 0.5),
      quick,
      // For benchmarks/results/SUMMARY.md (benchmarks/run-all.ts): gateway ÷ direct per concurrency.
      headline: legs.flatMap((l) => [
        {
          metric: `req/s through the gateway, proxied (--no-direct-connections; the Kubernetes target), predict ${predictMs} ms, c=${l.concurrency} (p50 ${l.p50DeltaMs >= 0 ? '+' : ''}${l.p50DeltaMs.toFixed(3)} ms)`,
          ratio: l.throughputRatio,
          baseline: 'straight to the replica',
          aim: predictMs >= 1 ? 0.9 : 0.5,
        },
        ...(l.directConnections === null
          ? []
          : [
              {
                metric: `req/s through the gateway with direct connections (the local default), predict ${predictMs} ms, c=${l.concurrency} (p50 ${l.directConnections.p50Ms - l.direct.p50Ms >= 0 ? '+' : ''}${(l.directConnections.p50Ms - l.direct.p50Ms).toFixed(3)} ms)`,
                ratio: l.directConnectionsRatio!,
                baseline: 'straight to the replica',
                aim: predictMs >= 1 ? 0.9 : 0.5,
              },
            ]),
        ...(l.ratioToMinimalProxy === null
          ? []
          : [
              {
                metric: `req/s through the gateway, proxied, predict ${predictMs} ms, c=${l.concurrency}`,
                ratio: l.ratioToMinimalProxy,
                baseline: `a minimal node:http reverse proxy (itself ${l.minimalThroughputRatio!.toFixed(2)} of straight to the replica)`,
              },
            ]),
      ]),
    };
    const variant = `${replicaKind === 'real' ? '' : `-${replicaKind}`}${predictMs > 0 ? `-predict${predictMs}ms` : ''}`;
    const file = join(process.env.MYELIN_BENCH_RESULTS_DIR || join(dirname(SELF), 'results'), `gateway${variant}.json`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
    console.log(`wrote ${file}`);
  } finally {
    for (const c of children) if (c.connected) c.disconnect();
  }
}

const role = arg('role', 'main');
if (role === 'load') {
  process.on('message', (cmd) => {
    void runLoad(cmd as LoadCommand).then((r) => process.send!(r));
  });
  process.on('disconnect', () => process.exit(0));
  process.stdout.write('ready\n');
} else if (role === 'replica') {
  void runReplica(arg('kind', 'plain'), Number(arg('predict-ms', '0')));
} else {
  await main();
}
