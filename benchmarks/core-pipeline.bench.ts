/**
 * Samples/s through the core scaling pipeline (ScalingPipeline: route by API → totalInFlight →
 * windowedLoad → decideScale with the cortex policy) with 1, 100 and 10 000 replicas spread over up
 * to 100 APIs, and CPU time per sample. Each replica sends one sample per virtual second; ticks
 * (10 s), the 60 s window and drop-out checks run in virtual time on a ReplayScheduler, so the
 * figure is CPU cost, not waiting. The same run measures a baseline — a plain loop doing the same
 * aggregation (latest per replica, running sum, the same time-weighted window, the policy every
 * tick) without rxjs — so the result is also a ratio. Bounded: about 1 s per measurement.
 *
 *   node --import tsx benchmarks/core-pipeline.bench.ts [--seconds 1] [--quick]
 *
 * `--quick`: 0.05 s per measurement (a smoke run for test/benchmarks/quick.test.ts, not a figure).
 *
 * Prints a table and writes benchmarks/results/core-pipeline.json.
 */
import { cpus, loadavg } from 'node:os';
import { Subject } from 'rxjs';
import type { AutoscalingSpec } from '../core/config/api-spec.js';
import type { MetricSample } from '../core/metrics/metric-sample.js';
import { TimeWeightedWindow } from '../core/metrics/time-weighted-window.js';
import { INITIAL_SCALING_POLICY_STATE, type ScalingPolicyState } from '../core/ports/scaling-policy.js';
import { ReplayScheduler } from '../core/scaling/replay-scheduler.js';
import { ScalingPipeline } from '../core/scaling/scaling-pipeline.js';
import { CortexScalingPolicy } from '../plugins/scaling-cortex/cortex-scaling-policy.js';
import { autoscalingSpec } from '../test/harness/autoscaling-spec-fixture.js';
import { QUICK, arg, writeResults } from './harness/bench-util.js';

const BUDGET_MS = Number(arg('seconds', QUICK ? '0.05' : '1')) * 1000;
const VARIANTS = 8;

// Cortex's defaults, with room to scale to every replica of the largest workload.
const spec: AutoscalingSpec = autoscalingSpec({ maxReplicas: 100_000 });

interface Workload {
  readonly replicas: number;
  readonly apis: number;
  /** rounds[v][i]: replica i's sample in a round using variant v. */
  readonly rounds: MetricSample[][];
}

function workload(replicas: number): Workload {
  const apis = Math.min(100, replicas);
  const rounds: MetricSample[][] = [];
  for (let v = 0; v < VARIANTS; v++) {
    const round: MetricSample[] = [];
    for (let i = 0; i < replicas; i++) {
      round.push({
        v: 1,
        api: `api-${i % apis}`,
        replica: `replica-${i}`,
        revision: 'r1',
        seq: v,
        t: 0,
        intervalMs: 1000,
        inFlight: ((i * 7 + v * 3) % 11) / 2,
        inFlightMax: 6,
        requests: { '2xx': 10, '4xx': 0, '5xx': 0 },
        latencyMsSum: 120,
        ready: true,
      });
    }
    rounds.push(round);
  }
  return { replicas, apis, rounds };
}

interface Measurement {
  readonly samples: number;
  readonly wallMs: number;
  readonly cpuUs: number;
  readonly ticks: number;
}

/** The real pipeline, virtual seconds until the wall budget is spent. */
function runPipeline(w: Workload, budgetMs: number): Measurement {
  const scheduler = new ReplayScheduler(0);
  const samples$ = new Subject<MetricSample>();
  const pipeline = new ScalingPipeline({ samples$, scheduler });
  const policy = new CortexScalingPolicy();
  for (let a = 0; a < w.apis; a++) pipeline.upsertApi({ api: `api-${a}`, spec, policy, replicas: Math.ceil(w.replicas / w.apis) });
  let ticks = 0;
  pipeline.ticks$.subscribe(() => ticks++);
  pipeline.start();
  let count = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let sec = 0; ; sec++) {
    scheduler.advanceTo(sec * 1000);
    const round = w.rounds[sec % VARIANTS];
    for (let i = 0; i < round.length; i++) samples$.next(round[i]);
    count += round.length;
    if ((sec & 15) === 0 && performance.now() - t0 >= budgetMs) break;
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  pipeline.close();
  return { samples: count, wallMs, cpuUs: cpu.user + cpu.system, ticks };
}

/** The baseline: the same aggregation and decisions in a plain loop, no rxjs, no scheduler actions. */
function runBaseline(w: Workload, budgetMs: number): Measurement {
  interface Entry {
    inFlight: number;
    lastSeenMs: number;
  }
  interface Api {
    readonly table: Map<string, Entry>;
    sum: number;
    readonly window: TimeWeightedWindow;
    state: ScalingPolicyState;
    current: number;
  }
  const policy = new CortexScalingPolicy();
  const apis = new Map<string, Api>();
  for (let a = 0; a < w.apis; a++) {
    apis.set(`api-${a}`, { table: new Map(), sum: 0, window: new TimeWeightedWindow(spec.windowMs), state: INITIAL_SCALING_POLICY_STATE, current: Math.ceil(w.replicas / w.apis) });
  }
  const staleMs = 3000;
  let ticks = 0;
  let count = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let sec = 0; ; sec++) {
    const now = sec * 1000;
    if (sec > 0 && now % spec.tickMs === 0) {
      for (const api of apis.values()) {
        api.sum = 0;
        for (const [id, e] of api.table) {
          if (now - e.lastSeenMs > staleMs) api.table.delete(id);
          else api.sum += e.inFlight;
        }
        const avg = api.window.average(now, spec.windowMs);
        const r = policy.decide(
          {
            spec,
            currentReplicas: api.current,
            metrics:
              avg === null || api.table.size === 0
                ? { valid: false, reason: 'no data' }
                : { valid: true, avgInFlight: Math.round(avg * 1e6) / 1e6, panicAvgInFlight: null, avgCpuUtilization: null, replicasReporting: api.table.size },
          },
          api.state,
          now,
        );
        api.state = r.state;
        api.current = r.decision.desired;
        ticks++;
      }
    }
    const round = w.rounds[sec % VARIANTS];
    for (let i = 0; i < round.length; i++) {
      const s = round[i];
      const api = apis.get(s.api) as Api;
      let e = api.table.get(s.replica);
      if (e === undefined) {
        e = { inFlight: s.inFlight, lastSeenMs: now };
        api.sum += s.inFlight;
        api.table.set(s.replica, e);
      } else {
        api.sum += s.inFlight - e.inFlight;
        e.inFlight = s.inFlight;
        e.lastSeenMs = now;
      }
      api.window.record(now, api.sum);
    }
    count += round.length;
    if ((sec & 15) === 0 && performance.now() - t0 >= budgetMs) break;
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { samples: count, wallMs, cpuUs: cpu.user + cpu.system, ticks };
}

interface Row {
  readonly replicas: number;
  readonly apis: number;
  readonly pipelineSamplesPerSec: number;
  readonly pipelineCpuNsPerSample: number;
  /** 1e9 / pipelineCpuNsPerSample: throughput per CPU-second, robust when the machine is shared. */
  readonly pipelineSamplesPerCpuSec: number;
  readonly baselineSamplesPerSec: number;
  readonly baselineCpuNsPerSample: number;
  /** pipeline samples/s ÷ baseline samples/s (1 = no rxjs overhead). */
  readonly ratio: number;
  readonly virtualSeconds: number;
  readonly ticks: number;
}

const rows: Row[] = [];
for (const replicas of [1, 100, 10_000]) {
  const w = workload(replicas);
  // Warm up both paths (JIT) before measuring.
  runPipeline(w, Math.min(500, BUDGET_MS / 2));
  runBaseline(w, Math.min(500, BUDGET_MS / 2));
  const p = runPipeline(w, BUDGET_MS);
  const b = runBaseline(w, BUDGET_MS);
  const pRate = (p.samples / p.wallMs) * 1000;
  const bRate = (b.samples / b.wallMs) * 1000;
  rows.push({
    replicas,
    apis: w.apis,
    pipelineSamplesPerSec: Math.round(pRate),
    pipelineCpuNsPerSample: Math.round((p.cpuUs * 1000) / p.samples),
    pipelineSamplesPerCpuSec: Math.round(p.samples / (p.cpuUs / 1e6)),
    baselineSamplesPerSec: Math.round(bRate),
    baselineCpuNsPerSample: Math.round((b.cpuUs * 1000) / b.samples),
    ratio: Math.round((pRate / bRate) * 1000) / 1000,
    virtualSeconds: Math.round(p.samples / replicas),
    ticks: p.ticks,
  });
}

const fmt = (n: number) => n.toLocaleString('en-US');
const header = ['replicas', 'apis', 'pipeline samples/s', 'cpu ns/sample', 'samples/cpu-s', 'baseline samples/s', 'baseline cpu ns/sample', 'ratio'];
const lines = rows.map((r) => [
  fmt(r.replicas),
  fmt(r.apis),
  fmt(r.pipelineSamplesPerSec),
  fmt(r.pipelineCpuNsPerSample),
  fmt(r.pipelineSamplesPerCpuSec),
  fmt(r.baselineSamplesPerSec),
  fmt(r.baselineCpuNsPerSample),
  r.ratio.toFixed(3),
]);
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
const show = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
console.log(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} cores (wall-clock figures suffer when the machine is shared)`);
console.log(show(header));
for (const l of lines) console.log(show(l));

const out = writeResults('core-pipeline', {
  benchmark: 'core-pipeline',
  budgetMsPerMeasurement: BUDGET_MS,
  loadAverage: loadavg(),
  aimSamplesPerSec: 1_000_000,
  headline: rows.map((r) => ({ metric: `samples/s, ${r.replicas} replicas`, ratio: r.ratio, baseline: 'a plain loop doing the same aggregation' })),
  rows,
});
console.log(`wrote ${out}`);
