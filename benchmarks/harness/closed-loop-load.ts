/**
 * The closed-loop load generator of the serving benchmarks, and how their legs are scheduled and merged.
 *
 * The generator runs in its own process, so that its CPU does not compete inside the bench's: the bench
 * forks its own file again with `--role load` (`forkLoadGenerator(SELF)`), and that child, seeing the
 * role, calls `serveLoadCommands()`. Each leg is then one IPC message (a `LoadCommand`) answered by one
 * (`LegSamples`): `leg()`. Importing this module starts nothing.
 *
 * A leg: one keep-alive agent, `concurrency` connections each running a closed loop (POST /predict,
 * wait for the whole response, POST again) for `warmupMs` + `durationMs`. A request is measured when it
 * ENDS after the warm-up, with its whole latency: a request a server kept waiting since the warm-up
 * counts with all its wait rather than being left out (uvicorn does not serve its connections in turn).
 * No loop starts a request after the end; one started before it is awaited and counted, and the leg's
 * elapsed time runs from the end of the warm-up to the end of the last request.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { median, percentile } from './bench-util.js';

/** The warm-up at the start of every measured leg, ms: requests ending before it are not measured. */
export const WARMUP_MS = 300;

/** One leg of load, sent to the load generator. */
export interface LoadCommand {
  /** 127.0.0.1:`port`, path /predict. */
  readonly port: number;
  /** The request body, sent as is with `content-type: contentType`. */
  readonly body: string;
  readonly contentType: string;
  /** Connections, each one closed loop of requests. */
  readonly concurrency: number;
  /** The measured part of the leg, ms, after the warm-up. */
  readonly durationMs: number;
  /** The warm-up before it, ms (`WARMUP_MS`; 0 to measure from the first request). */
  readonly warmupMs: number;
}

/** What one leg measured, with every latency, so that the legs of several rounds can be merged. */
export interface LegSamples {
  /** Latency of each measured request answered 200, ms, in the order they ended. */
  readonly latenciesMs: number[];
  /** Measured requests that failed (a status other than 200, or a connection error). */
  readonly errors: number;
  /** Seconds from the end of the warm-up to the end of the last request. */
  readonly elapsedS: number;
  /** Requests completed over the whole leg, warm-up included (the denominator of CPU per request). */
  readonly requestsTotal: number;
  /** Fewest and most measured requests one connection (closed loop) completed: a fair server keeps them close. */
  readonly perConnectionMin: number;
  readonly perConnectionMax: number;
  /** Filled in by the bench (`runRounds`): CPU time of the server over the whole leg, µs. */
  serverCpuUs?: number;
}

/** Runs one leg (in the load generator's process). */
export async function runLoad(cmd: LoadCommand): Promise<LegSamples> {
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
      // Counted by when it ends: one a server kept waiting since the warm-up counts with its whole wait.
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

/** The load generator's side (`--role load`): runs each command received over IPC, answers with its samples; exits with its parent. */
export function serveLoadCommands(): void {
  process.on('message', (cmd: LoadCommand) => {
    void runLoad(cmd).then((r) => process.send!(r));
  });
  // The IPC channel closing means the bench is gone.
  process.on('disconnect', () => process.exit(0));
}

/** Starts the load generator: `benchFile` (the bench's own file, which must call `serveLoadCommands()` for `--role load`) run again under tsx. */
export function forkLoadGenerator(benchFile: string): ChildProcess {
  return fork(benchFile, ['--role', 'load'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** Runs one leg on the load generator `load`; fails if it exits first. */
export function leg(load: ChildProcess, cmd: LoadCommand): Promise<LegSamples> {
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

/** A server to load: its name (the key of its legs), port and PID (for its CPU time). */
export interface LoadTarget {
  readonly name: string;
  readonly port: number;
  readonly pid: number | undefined;
}

/**
 * Runs `rounds` rounds of legs at `concurrency`, each target once per round, the order rotating by one
 * per round (and by `concurrency`), so that no target always runs first or always after another: 3
 * targets A B C, concurrency 1, ⇒ round 0 B C A, round 1 C A B. Each leg's `serverCpuUs` is the
 * difference of `cpuUs(target.pid)` (µs) around it. Returns each target's legs, by name, in round
 * order (index r of two targets' lists ran in the same round, back to back).
 */
export async function runRounds(
  load: ChildProcess,
  targets: readonly LoadTarget[],
  options: {
    readonly rounds: number;
    readonly concurrency: number;
    readonly leg: Omit<LoadCommand, 'port' | 'concurrency'>;
    readonly cpuUs: (pid: number | undefined) => number;
  },
): Promise<Map<string, LegSamples[]>> {
  const { rounds, concurrency, cpuUs } = options;
  const legs = new Map<string, LegSamples[]>(targets.map((t) => [t.name, []]));
  for (let r = 0; r < rounds; r++) {
    const order = targets.map((_, i) => targets[(i + r + concurrency) % targets.length]);
    for (const t of order) {
      const c0 = cpuUs(t.pid);
      const samples = await leg(load, { ...options.leg, port: t.port, concurrency });
      samples.serverCpuUs = cpuUs(t.pid) - c0;
      legs.get(t.name)!.push(samples);
    }
  }
  return legs;
}

/** The legs of one target merged: requests over total time, statistics over all latencies. */
export interface LegStats {
  /** Measured requests answered 200. */
  readonly requests: number;
  readonly errors: number;
  /** Requests per second: `requests` over the legs' summed `elapsedS`. */
  readonly rps: number;
  /** Latency of the measured requests, ms: mean, 50th and 99th percentile, maximum. */
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Over the legs: the fewest and the most requests a connection completed in one leg (fairness). */
  readonly perConnectionMin: number;
  readonly perConnectionMax: number;
  /** Server CPU µs per request, over every request sent (warm-up included); NaN without requests. */
  readonly serverCpuUsPerRequest: number;
}

/** Merges the legs of one target (e.g. its rounds at one concurrency). */
export function mergeLegs(legs: readonly LegSamples[]): LegStats {
  const all = legs.flatMap((l) => l.latenciesMs).sort((a, b) => a - b);
  const seconds = legs.reduce((s, l) => s + l.elapsedS, 0);
  const cpu = legs.reduce((s, l) => s + (l.serverCpuUs ?? 0), 0);
  const total = legs.reduce((s, l) => s + l.requestsTotal, 0);
  return {
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

/** One target against a reference at the same concurrency, over the same rounds: ratios are target ÷ reference. */
export interface Comparison {
  /** Merged requests per second. */
  readonly throughputRatio: number;
  /**
   * The median over rounds of the requests-per-second ratio within one round. The legs of one round
   * run back to back, so a burst of load from other processes hits both sides of a pair: rounds of
   * 1.2, 0.9 and 1.0 ⇒ 1.0.
   */
  readonly pairedThroughputRatio: number;
  /** Latency of the measured requests: mean, 50th and 99th percentile. */
  readonly meanRatio: number;
  readonly p50Ratio: number;
  readonly p99Ratio: number;
  /** The 50th percentile's difference, ms (target − reference). */
  readonly p50DeltaMs: number;
  /** Server CPU per request. */
  readonly cpuPerRequestRatio: number;
}

/** Compares the legs of a target with those of a reference, both in round order (`runRounds`). */
export function compareLegs(mine: readonly LegSamples[], reference: readonly LegSamples[]): Comparison {
  const m = mergeLegs(mine);
  const r = mergeLegs(reference);
  const rps = (l: LegSamples): number => l.latenciesMs.length / l.elapsedS;
  return {
    throughputRatio: m.rps / r.rps,
    pairedThroughputRatio: median(mine.map((l, i) => rps(l) / rps(reference[i]))),
    meanRatio: m.meanMs / r.meanMs,
    p50Ratio: m.p50Ms / r.p50Ms,
    p99Ratio: m.p99Ms / r.p99Ms,
    p50DeltaMs: m.p50Ms - r.p50Ms,
    cpuPerRequestRatio: m.serverCpuUsPerRequest / r.serverCpuUsPerRequest,
  };
}
