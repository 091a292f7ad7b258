import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ConfigError } from '../../../core/errors.js';
import { ExitError } from '../../../serving/cli/exit-error.js';
import { simulate, type SimulateOptions, type SimulateResult } from '../../../serving/cli/commands/simulate.js';
import { ReferenceCortexAutoscaler } from '../../core/scaling/reference-cortex.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
let dir: string;

const CONFIG = `- name: gen
  kind: RealtimeAPI
  predictor:
    type: onnx
    model_path: s3://bucket/gen.onnx
  autoscaling:
    target_replica_concurrency: 2
    max_replicas: 20
- name: gen-burst
  kind: RealtimeAPI
  predictor:
    type: onnx
    model_path: s3://bucket/gen.onnx
  autoscaling:
    policy: burst
    target_replica_concurrency: 2
    max_replicas: 20
`;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'myelin-simulate-'));
  await writeFile(join(dir, 'myelin.yaml'), CONFIG);
  await writeFile(join(dir, 'step.csv'), 't,inflight\n0,2\n60,12\n300,2\n660,2\n');
  await writeFile(join(dir, 'step.jsonl'), '{"t":0,"inFlight":2}\n{"t":60,"inFlight":12}\n{"t":300,"inFlight":2}\n{"t":660,"inFlight":2}\n');
  // The same totals as per-replica columns that do not follow the decisions: 2 replicas splitting the load.
  await writeFile(join(dir, 'replicas.csv'), 't,a,b\n0,1,1\n60,6,6\n300,1,1\n660,1,1\n');
  await writeFile(join(dir, 'bad.csv'), 't,inflight\n0,2\n10,lots\n');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return { stream: new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) }), text: () => chunks.join('') };
}

async function run(o: Partial<SimulateOptions>): Promise<{ result: SimulateResult; out: string }> {
  const out = capture();
  const result = await simulate({ config: 'myelin.yaml', trace: 'step.csv', output: 'table', cwd: dir, stdout: out.stream, ...o, api: o.api ?? 'gen' });
  return { result, out: out.text() };
}

test('simulate: the cortex example, tick by tick, matches the independent reference decision by decision', async () => {
  const { result } = await run({});
  assert.equal(result.policy, 'cortex');
  assert.equal(result.rows.length, 66);
  const ref = new ReferenceCortexAutoscaler({ ...result.autoscaling, target: result.autoscaling.targetReplicaConcurrency });
  let cur = result.autoscaling.initReplicas;
  for (const r of result.rows) {
    assert.equal(r.from, cur, `at ${r.t} s the count follows the decisions`);
    const want = ref.tick(r.t * 1000, cur, r.avg);
    assert.deepEqual([r.recommendation, r.replicas], [ref.lastRecommendation, want], `at ${r.t} s: ${r.reason}`);
    cur = r.replicas;
  }
  const changes = result.rows.filter((r) => r.replicas !== r.from).map((r) => `${r.t}:${r.from}→${r.replicas}`);
  assert.deepEqual(changes, ['120:1→2', '180:2→3', '240:3→5', '300:5→6', '610:6→5']);
  // Independent check of one window mean: (50 × 2 + 10 × 12) / 60 at 70 s.
  assert.equal(result.rows.find((r) => r.t === 70)?.avg, 3.666667);
});

test('simulate: jsonl and csv traces of the same load give the same ticks; per-replica traces the same averages', async () => {
  const csv = (await run({})).result.rows;
  const jsonl = (await run({ trace: 'step.jsonl' })).result.rows;
  assert.deepEqual(jsonl, csv);
  const replicas = (await run({ trace: 'replicas.csv' })).result.rows;
  assert.deepEqual(replicas.map((r) => [r.t, r.avg]), csv.map((r) => [r.t, r.avg]));
  assert.ok(replicas.every((r) => r.reporting === 2), 'the recorded replicas report whatever the count');
});

test('simulate: outputs — table for people, json and csv for scripts', async () => {
  const table = (await run({})).out;
  assert.match(table, /^gen: policy cortex, tick 10s, window 1m, target 2 in flight per replica, replicas 1\.\.20\n/);
  assert.match(table, /\nt \(s\) +avg in flight +raw +rec +replicas +reason\n/);
  assert.match(table, /\n120 +12 +6 +2 +1 → 2 +scale up 1 → 2; capped by max_upscale_factor 1\.5 \(ceiling 2\)\n/);
  const json = JSON.parse((await run({ output: 'json' })).out) as { api: string; policy: string; ticks: { t: number; replicas: number }[] };
  assert.equal(json.api, 'gen');
  assert.deepEqual(json.ticks[11], { t: 120, reporting: 1, avg: 12, raw: 6, recommendation: 2, from: 1, replicas: 2, panic: null, reason: 'scale up 1 → 2; capped by max_upscale_factor 1.5 (ceiling 2)' });
  const csv = (await run({ output: 'csv' })).out.trimEnd().split('\n');
  assert.equal(csv[0], 't,reporting,avg,raw,recommendation,from,replicas,panic,reason');
  assert.equal(csv[12], '120,1,12,6,2,1,2,,"scale up 1 → 2; capped by max_upscale_factor 1.5 (ceiling 2)"');
  assert.equal(csv.length, 67);
});

test('simulate: burst reacts before the first tick after the step (between ticks, as the daemon does)', async () => {
  const { result } = await run({ api: 'gen-burst' });
  assert.equal(result.policy, 'burst');
  const first = result.rows.find((r) => r.replicas > r.from);
  // Target 2, panic window 6 s: at 61 s (5 × 2 + 1 × 12) / 6 = 3.667 in flight ⇒ 1.833 < 2 × 1; at 61.25 s
  // (4.75 × 2 + 1.25 × 12) / 6 = 4.083 ⇒ 2.042 replicas ≥ 2 ⇒ 3 at once (the tick-only answer came at 62 s).
  assert.deepEqual([first?.t, first?.replicas, first?.panic], [61.25, 3, true]);
});

test('simulate: --until and --replicas', async () => {
  const { result } = await run({ until: 30, replicas: 3 });
  assert.deepEqual(result.rows.map((r) => [r.t, r.from]), [[10, 3], [20, 3], [30, 3]]);
});

const failures: { name: string; o: Partial<SimulateOptions>; want: (e: unknown) => boolean }[] = [
  { name: 'several APIs and no --api', o: { api: undefined as unknown as string }, want: (e) => e instanceof ExitError && /has 2 APIs; choose one with --api \(gen, gen-burst\)/.test(e.message) },
  { name: 'unknown API', o: { api: 'nope' }, want: (e) => e instanceof ExitError && /no API named "nope"/.test(e.message) },
  { name: 'missing trace', o: { trace: 'none.csv' }, want: (e) => e instanceof ExitError && /cannot read the trace none\.csv \(no such file\)/.test(e.message) },
  { name: 'unknown trace format', o: { trace: 'trace.txt' }, want: (e) => e instanceof ExitError && /name it \.csv or \.jsonl, or pass --trace-format/.test(e.message) },
  { name: 'bad trace line', o: { trace: 'bad.csv' }, want: (e) => e instanceof ConfigError && /^bad\.csv:3:4: inflight must be a number/.test(e.message) },
  { name: 'bad config', o: { config: 'missing.yaml' }, want: (e) => e instanceof ConfigError && /cannot read the configuration file/.test(e.message) },
];

for (const f of failures) {
  test(`simulate fails clearly: ${f.name}`, async () => {
    const out = capture();
    const o = { config: 'myelin.yaml', trace: 'step.csv', output: 'table' as const, cwd: dir, stdout: out.stream, api: 'gen', ...f.o };
    if ('api' in f.o && f.o.api === undefined) delete (o as { api?: string }).api;
    await assert.rejects(simulate(o), f.want);
  });
}

test('myelin simulate runs as a real command (child process) and prints json', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [join(root, 'bin/myelin.mjs'), 'simulate', '--config', join(dir, 'myelin.yaml'), '--api', 'gen', '--trace', join(dir, 'step.csv'), '-o', 'json'],
    { cwd: dir, timeout: 60_000 },
  );
  const json = JSON.parse(stdout) as { ticks: { t: number; from: number; replicas: number }[] };
  assert.deepEqual(
    json.ticks.filter((x) => x.replicas !== x.from).map((x) => [x.t, x.replicas]),
    [[120, 2], [180, 3], [240, 5], [300, 6], [610, 5]],
  );
  const bad = await promisify(execFile)(process.execPath, [join(root, 'bin/myelin.mjs'), 'simulate', '--config', 'myelin.yaml', '--trace', 'step.csv'], { cwd: dir, timeout: 60_000 }).then(
    () => null,
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(bad?.code, 1);
  assert.match(bad?.stderr ?? '', /choose one with --api/);
});
