/**
 * Every benchmark still runs: each `benchmarks/*.bench.ts` (found by the glob, so a new one is covered
 * with no change here) is run with `--quick` (a tiny bounded run), three at a time, writing into a
 * temporary results folder (MYELIN_BENCH_RESULTS_DIR), and must exit 0 having written its JSON with a
 * `headline` of ratios (benchmarks/harness/bench-util.ts `Headline`). Then `npm run bench`'s runner
 * (benchmarks/run-all.ts) runs one bench in --quick mode and must write SUMMARY.md with its rows.
 * Figures are not checked: quick runs are not measurements.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BENCH_DIR = join(ROOT, 'benchmarks');
/** A quick run that takes longer than this is a failure in itself (ms). */
const TIMEOUT_MS = 150_000;
const PARALLEL = 3;

const benches = readdirSync(BENCH_DIR)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();

interface Run {
  readonly code: number | null;
  readonly output: string;
  readonly ms: number;
}

/** Runs `args` under node + tsx with the results folder `dir`; ends it by PID after TIMEOUT_MS. */
function run(args: readonly string[], dir: string): Promise<Run> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', MYELIN_BENCH_RESULTS_DIR: dir },
    });
    let output = '';
    const keep = (c: Buffer): void => void (output = (output + c.toString()).slice(-6000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => {
      output += `\n[killed after ${TIMEOUT_MS} ms]`;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
    }, TIMEOUT_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output, ms: Date.now() - t0 });
    });
  });
}

/** The results files of `bench` in `dir`: `<bench>.json` or `<bench>-<variant>.json`. */
function resultsOf(dir: string, bench: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.json') && (f === `${bench}.json` || f.startsWith(`${bench}-`)));
}

/** Problems with one results file's headline ('' when none). */
function headlineProblems(data: { headline?: unknown }): string {
  const h = data.headline;
  if (!Array.isArray(h) || h.length === 0) return `want a non-empty headline array, got ${JSON.stringify(h)}`;
  for (const [i, x] of (h as Array<Record<string, unknown>>).entries()) {
    if (typeof x.metric !== 'string' || x.metric === '') return `headline[${i}].metric: want a string, got ${JSON.stringify(x.metric)}`;
    if (typeof x.baseline !== 'string' || x.baseline === '') return `headline[${i}].baseline: want a string, got ${JSON.stringify(x.baseline)}`;
    // NaN (a leg without data) is written as null; anything else must be a number.
    if (x.ratio !== null && typeof x.ratio !== 'number') return `headline[${i}].ratio: want a number, got ${JSON.stringify(x.ratio)}`;
    if (x.aim !== undefined && typeof x.aim !== 'number') return `headline[${i}].aim: want a number, got ${JSON.stringify(x.aim)}`;
  }
  return '';
}

describe('every benchmark runs with --quick and writes its ratios', () => {
  const dir = mkdtempSync(join(tmpdir(), 'myelin-bench-quick-'));
  const runs = new Map<string, Run>();

  before(async () => {
    const queue = [...benches];
    const worker = async (): Promise<void> => {
      for (let b = queue.shift(); b !== undefined; b = queue.shift()) {
        runs.set(b, await run([join(BENCH_DIR, `${b}.bench.ts`), '--quick'], dir));
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('there are benchmarks to run', () => {
    assert.ok(benches.length >= 5, `want >= 5 benchmarks/*.bench.ts, got ${benches.join(', ')}`);
  });

  for (const bench of benches) {
    test(`${bench}.bench.ts --quick`, () => {
      const r = runs.get(bench)!;
      assert.equal(r.code, 0, `want exit 0, got ${r.code} after ${r.ms} ms; last output:\n${r.output}`);
      const files = resultsOf(dir, bench);
      assert.ok(files.length > 0, `want ${bench}.json in the results folder, got ${readdirSync(dir).join(', ')}`);
      for (const f of files) {
        const data = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { headline?: unknown; quick?: unknown };
        assert.equal(headlineProblems(data), '', `${f}`);
        assert.equal(data.quick, true, `${f}: want quick: true (the run says it was a smoke run)`);
      }
    });
  }
});

describe('npm run bench (benchmarks/run-all.ts)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'myelin-bench-all-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('runs the chosen benches and writes SUMMARY.md and run-all.json', async () => {
    const r = await run([join(BENCH_DIR, 'run-all.ts'), '--quick', '--only', 'core-pipeline'], dir);
    assert.equal(r.code, 0, `want exit 0, got ${r.code}; last output:\n${r.output}`);
    const summary = readFileSync(join(dir, 'SUMMARY.md'), 'utf8');
    assert.match(summary, /\| core-pipeline \| samples\/s, 1 replicas \| (\d+\.\d{3}|–) \| a plain loop/);
    assert.match(summary, /--quick/);
    const all = JSON.parse(readFileSync(join(dir, 'run-all.json'), 'utf8')) as { steps: Array<{ bench: string; status: string; results: string[] }> };
    assert.deepEqual(
      all.steps.map((s) => [s.bench, s.status, s.results]),
      [['core-pipeline', 'ok', ['core-pipeline.json']]],
    );
  });
});
