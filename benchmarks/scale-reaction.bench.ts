/**
 * Scale reaction: how long from a load step to (a) the scaling decision and (b) the first response
 * served by a new replica, through the whole product (daemon in this process, replicas as child
 * processes, real HTTP on 127.0.0.1), with the `cortex` policy (the baseline, Cortex's fastest
 * documented setting: window 10s, upscale_stabilization_period 0s, tick 10s) and the `burst` policy
 * (tick 2s, panic window = one tick) in the same run, so `burst` is reported as a ratio of `cortex`.
 *
 * The load step: 8 closed-loop clients against a predictor that takes 100 ms, target concurrency 1,
 * so the API wants ~8 replicas (max 4). Each run is bounded (90 s) and stops by itself.
 *
 *   node --import tsx benchmarks/scale-reaction.bench.ts [--runs 1] [--sources] [--quick]
 *
 * The daemon and its replicas run the compiled package (dist/, built when missing), as users run them;
 * `--sources` runs them from the TypeScript sources through tsx instead. `--quick` (a smoke run for
 * test/benchmarks/quick.test.ts, not a figure) runs dist/ when it exists (else the sources, never
 * building) with a 2 s window, ticks of 2 s
 * (cortex) and 1 s (burst) and a shorter idle wait.
 *
 * Prints a table and writes benchmarks/results/scale-reaction.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ScalingDecidedEvent } from '../core/events/engine-event.js';
import { writeResults } from './harness/bench-util.js';

// Set before the harness is imported: it reads the CLI to run once.
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const QUICK = process.argv.includes('--quick');
const DIST_CLI = join(ROOT, 'dist/serving/cli/bin.js');
// --quick uses dist/ when it is there (a replica from the sources starts ~6× slower) and never builds it.
if (!process.argv.includes('--sources') && (!QUICK || existsSync(DIST_CLI))) {
  process.env.MYELIN_CLI = DIST_CLI;
  if (!existsSync(DIST_CLI)) execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], { stdio: 'inherit' });
}
const { nextEvent, removeDir, startE2eDaemon, startLoad, waitFor } = await import('../test/e2e/e2e-harness.js');
const argRuns = process.argv.indexOf('--runs');
const RUNS = argRuns > 0 ? Number(process.argv[argRuns + 1]) : 1;

const yaml = (policy: 'cortex' | 'burst') => `- name: step-${policy}
  kind: RealtimeAPI
  predictor:
    type: typescript
    path: predictor.ts
    config:
      delay_ms: 100
  compute:
    cpu: 100m
  autoscaling:
    policy: ${policy}
    min_replicas: 1
    max_replicas: 4
    target_replica_concurrency: 1
    window: ${QUICK ? '2s' : '10s'}
    tick: ${policy === 'cortex' ? (QUICK ? '2s' : '10s') : QUICK ? '1s' : '2s'}
    upscale_stabilization_period: 0s
`;

interface Run {
  readonly policy: string;
  readonly decisionMs: number;
  readonly newReplicaServingMs: number;
  readonly from: number;
  readonly to: number;
}

async function measure(policy: 'cortex' | 'burst'): Promise<Run> {
  const d = await startE2eDaemon();
  const name = `step-${policy}`;
  try {
    await d.deploy(yaml(policy));
    const daemon = d.running.daemon;
    await waitFor(`${name} live`, 60_000, async () => (await daemon.get(name)).status === 'live');
    const url = await d.url(name);
    // Warm up the single replica and let the autoscaler see an idle API for one window.
    const first = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const initialPid = ((await first.json()) as { pid: number }).pid;
    await new Promise((r) => setTimeout(r, QUICK ? 2_500 : 10_500));
    const t0 = Date.now();
    const decided = nextEvent(daemon.events$({ api: name, sinceMs: t0 }), (e) => e.type === 'scaling.decided' && e.to > e.from, 90_000);
    const load = startLoad(url, 8, { maxMs: 90_000, maxRequests: 100_000 });
    const e = (await decided) as ScalingDecidedEvent;
    const decisionMs = e.t - t0;
    await waitFor('a new replica answers', 60_000, () => [...load.result.pids].some((p) => p !== initialPid));
    const newReplicaServingMs = Date.now() - t0;
    await load.stop();
    return { policy, decisionMs, newReplicaServingMs, from: e.from, to: e.to };
  } finally {
    await d.close();
    await removeDir(d.dir);
  }
}

const runs: Run[] = [];
for (let i = 0; i < RUNS; i++) {
  for (const policy of ['cortex', 'burst'] as const) {
    const r = await measure(policy);
    runs.push(r);
    console.error(`${policy}: decision after ${r.decisionMs} ms (${r.from} -> ${r.to}), new replica serving after ${r.newReplicaServingMs} ms`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = (policy: string) => {
  const rs = runs.filter((r) => r.policy === policy);
  return { policy, runs: rs.length, decisionMs: median(rs.map((r) => r.decisionMs)), newReplicaServingMs: median(rs.map((r) => r.newReplicaServingMs)) };
};
const cortex = summary('cortex');
const burst = summary('burst');
const rows = [
  { ...cortex, decisionRatio: 1, servingRatio: 1 },
  { ...burst, decisionRatio: burst.decisionMs / cortex.decisionMs, servingRatio: burst.newReplicaServingMs / cortex.newReplicaServingMs },
];
console.log('policy   runs   load step -> decision   load step -> new replica serving   ratio vs cortex (decision / serving)');
for (const r of rows) {
  console.log(
    `${r.policy.padEnd(8)} ${String(r.runs).padEnd(6)} ${`${(r.decisionMs / 1000).toFixed(2)} s`.padEnd(23)} ${`${(r.newReplicaServingMs / 1000).toFixed(2)} s`.padEnd(34)} ${r.decisionRatio.toFixed(2)} / ${r.servingRatio.toFixed(2)}`,
  );
}
const headline = [
  { metric: 'load step → decision, burst', ratio: rows[1].decisionRatio, baseline: 'the cortex policy', higherIsBetter: false },
  { metric: 'load step → new replica serving, burst', ratio: rows[1].servingRatio, baseline: 'the cortex policy', higherIsBetter: false },
];
const out = writeResults('scale-reaction', { when: new Date().toISOString(), loadavg: loadavg(), runs, summary: rows, headline });
console.log(`wrote ${out}`);
