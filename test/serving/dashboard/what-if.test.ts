import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { InFlightPoint } from '../../../serving/daemon/in-flight-recording.js';
import { simulate } from '../../../serving/cli/commands/simulate.js';
import { ExitError } from '../../../serving/cli/exit-error.js';
import { applyOverrides, parseSetOptions, recordingTrace, scalingPolicies, whatIf, WhatIfError } from '../../../serving/dashboard/what-if.js';
import { autoscalingSpec } from '../../harness/autoscaling-spec-fixture.js';

const KINDS = ['burst', 'cortex', 'cpu'];

test('overrides: config-file names and aliases change the autoscaling; bad ones say which field and why', () => {
  const base = autoscalingSpec({ tickMs: 10_000, windowMs: 60_000, panicWindowMs: 6_000 });
  const ok: Array<{ set: Record<string, string>; want: Partial<typeof base> }> = [
    { set: { window: '30s' }, want: { windowMs: 30_000, panicWindowMs: 10_000 } },
    { set: { target: '4' }, want: { targetReplicaConcurrency: 4 } },
    { set: { downscale_stabilization_period: '1m', upscale_stabilization: '0s' }, want: { downscaleStabilizationPeriodMs: 60_000, upscaleStabilizationPeriodMs: 0 } },
    { set: { policy: 'burst', tick: '2s', window: '20s', panic_window: '4s' }, want: { policy: 'burst', tickMs: 2_000, windowMs: 20_000, panicWindowMs: 4_000 } },
    { set: { max_replicas: '3', min_replicas: '2' }, want: { maxReplicas: 3, minReplicas: 2, initReplicas: 2 } },
  ];
  for (const c of ok) {
    const got = applyOverrides(base, c.set, KINDS);
    for (const [k, v] of Object.entries(c.want)) assert.equal(got[k as keyof typeof got], v, `${JSON.stringify(c.set)}: ${k} want ${v}, got ${String(got[k as keyof typeof got])}`);
  }
  const bad: Array<{ set: Record<string, string>; want: RegExp }> = [
    { set: { windw: '30s' }, want: /unknown autoscaling field "windw" \(known: policy, /},
    { set: { window: '30' }, want: /window=30: invalid duration/ },
    { set: { window: '15s' }, want: /window 15s is not a multiple of the tick, 10s/ },
    { set: { window: '5s' }, want: /window must be at least the tick, 10s/ },
    { set: { tick: '500ms' }, want: /tick must be at least 1s/ },
    { set: { min_replicas: '5', max_replicas: '4' }, want: /min_replicas cannot be greater than max_replicas \(5 > 4\)/ },
    { set: { target: '0' }, want: /target_replica_concurrency must be greater than 0/ },
    { set: { max_replicas: '2.5' }, want: /max_replicas=2.5: must be a whole number/ },
    { set: { policy: 'magic' }, want: /policy=magic: unknown policy \(known: burst, cortex, cpu\)/ },
    { set: { policy: 'burst', panic_window: '2m' }, want: /panic_window must be from one tick to the window/ },
  ];
  for (const c of bad) assert.throws(() => applyOverrides(base, c.set, KINDS), (err: unknown) => err instanceof WhatIfError && c.want.test(err.message), JSON.stringify(c.set));
  assert.deepEqual(parseSetOptions(['window=30s', ' target = 2 ']), { window: '30s', target: '2' });
  assert.throws(() => parseSetOptions(['window']), /expected key=value/);
});

/** A recording: `inFlight` per second from `t0`, as the daemon records it. */
function recording(t0: number, values: readonly (number | null)[], replicas = 1): InFlightPoint[] {
  return values.map((v, i) => ({ t: t0 + i * 1000, inFlight: v, replicas, target: 1, '2xx': 0, '4xx': 0, '5xx': 0, latencyMsSum: 0 }));
}

test('a recording becomes a total-mode trace; a gap (the daemon was down) is a null point', () => {
  const pts = [...recording(10_000, [1, 2]), ...recording(20_000, [3])];
  assert.deepEqual(
    recordingTrace(pts).points.map((p) => [p.tSec, p.total]),
    [[10, 1], [11, 2], [12, null], [20, 3]],
  );
});

test('what-if without overrides is exactly `myelin simulate` of the same load as a trace file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'myelin-what-if-'));
  try {
    // 40 s idle at 1, a 100 s step to 12, back to 1: cortex policy with short windows.
    const values = [...Array(40).fill(1), ...Array(100).fill(12), ...Array(120).fill(1)];
    const t0 = 1_700_000_000_000;
    const points = recording(t0, values);
    await writeFile(join(dir, 'myelin.yaml'), `- name: a
  kind: RealtimeAPI
  predictor:
    type: onnx
    model_path: s3://bucket/a.onnx
  autoscaling:
    target_replica_concurrency: 2
    max_replicas: 10
    tick: 2s
    window: 10s
    upscale_stabilization_period: 10s
    downscale_stabilization_period: 30s
`);
    await writeFile(join(dir, 'load.csv'), `t,inflight\n${points.map((p) => `${p.t / 1000},${p.inFlight}`).join('\n')}\n`);
    const chunks: string[] = [];
    const sim = await simulate({ config: 'myelin.yaml', trace: 'load.csv', output: 'json', cwd: dir, stdout: new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) }) });
    const got = whatIf({ autoscaling: sim.autoscaling, createdMs: t0, points, sinceMs: t0, set: {}, policies: scalingPolicies() });
    const want = sim.rows.map((r) => [Math.round(r.t * 1000), r.replicas, r.reason]);
    assert.deepEqual(got.ticks.map((t) => [t.atMs, t.decision.desired, t.decision.reason]), want);
    assert.ok(want.some((w) => (w[1] as number) > 1), 'the step scaled the API up');
    // And with another target, the same recording gives another curve.
    const calm = whatIf({ autoscaling: sim.autoscaling, createdMs: t0, points, sinceMs: t0, set: { target: '50' } });
    assert.ok(calm.ticks.every((t) => t.decision.desired === 1), 'target 50: never more than one replica');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('what-if warms up before the range and starts from the recorded count; an empty range is an error', () => {
  const t0 = 1_700_000_000_000;
  const points = recording(t0, Array(200).fill(6), 3);
  const spec = autoscalingSpec({ tickMs: 2_000, windowMs: 10_000, downscaleStabilizationPeriodMs: 20_000, upscaleStabilizationPeriodMs: 0, maxReplicas: 10, targetReplicaConcurrency: 2 });
  const r = whatIf({ autoscaling: spec, createdMs: t0 - 3_600_000, points, sinceMs: t0 + 100_000, set: {} });
  assert.equal(r.startReplicas, 3);
  assert.ok(r.ticks.length > 0 && r.ticks.every((t) => t.atMs >= t0 + 100_000), 'only ticks in the range');
  assert.ok(r.ticks.every((t) => t.decision.desired === 3), '6 in flight at target 2 holds 3 replicas');
  assert.throws(() => whatIf({ autoscaling: spec, createdMs: t0, points, sinceMs: t0 + 500_000, set: {} }), /nothing was recorded since/);
});

test('myelin simulate: --since needs --api and excludes a trace; --set needs key=value (before any daemon is asked)', async () => {
  const stdout = new Writable({ write: (_c, _e, cb) => cb() });
  const base = { output: 'table' as const, cwd: tmpdir(), stdout, url: 'http://127.0.0.1:1' };
  const cases: Array<{ name: string; o: Partial<Parameters<typeof simulate>[0]>; want: RegExp }> = [
    { name: 'no api', o: { since: '5m' }, want: /--since needs --api/ },
    { name: 'both', o: { since: '5m', api: 'a', trace: 'x.csv', config: 'c.yaml' }, want: /either --since .* or --config with --trace/ },
    { name: 'neither', o: { api: 'a' }, want: /give --config <file> and --trace <file>/ },
    { name: 'bad --set', o: { since: '5m', api: 'a', set: ['window'] }, want: /--set window: expected key=value/ },
    { name: 'bad --since', o: { since: '5', api: 'a' }, want: /--since invalid duration/ },
    { name: 'no daemon', o: { since: '5m', api: 'a' }, want: /cannot reach the myelin daemon at http:\/\/127.0.0.1:1/ },
  ];
  for (const c of cases) {
    await assert.rejects(simulate({ ...base, ...c.o }), (err: unknown) => err instanceof ExitError && c.want.test(err.message), c.name);
  }
});
