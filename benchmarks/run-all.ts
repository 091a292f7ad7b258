/**
 * `npm run bench`: every `benchmarks/*.bench.ts` (found by the glob, so a new bench is included with
 * no change here), one after the other, within a total budget (default 600 s, `--budget-s`), then
 * benchmarks/results/SUMMARY.md: one table of every bench's `headline` ratios (myelin ÷ its baseline,
 * measured in the same run; `Headline` in harness/bench-util.ts) and benchmarks/results/run-all.json
 * (what ran, how long, how it ended).
 *
 *   npm run bench [-- --budget-s 600] [-- --only serving,nats-metrics] [-- --quick]
 *
 * Each bench runs with the arguments of `PLAN` (bounded settings chosen so that the whole run fits 10
 * minutes on the 2-core development machine; a bench not in `PLAN` runs with its defaults and gets
 * `DEFAULT_CAP_S`), and is stopped (SIGTERM, then SIGKILL after 10 s, by its PID; the benches end their
 * own children on SIGTERM) when it passes its cap or the budget's end. A bench whose cap no longer fits
 * the budget left is skipped and listed as such. `--quick` passes `--quick` to every bench instead
 * (a smoke run; its figures are not measurements). Results go to MYELIN_BENCH_RESULTS_DIR when set.
 * Exit code: 0 when every bench that ran ended with 0, else 1.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QUICK, RESULTS_DIR, arg, type Headline } from './harness/bench-util.js';

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEFAULT_CAP_S = 120;

/** One run of a bench: its arguments and how long it may take (s). */
interface Step {
  readonly args: readonly string[];
  readonly capS: number;
}

/**
 * Bounded settings per bench (by file name without `.bench.ts`), most important first in the
 * run order; the caps are about 1.5 × what each took here. Several steps run the bench several times
 * (the gateway with a trivial and a 1 ms predictor: each writes its own results file).
 */
const PLAN: Readonly<Record<string, readonly Step[]>> = {
  serving: [{ args: ['--rounds', '3', '--seconds', '1', '--variants', 'in-thread,2 workers'], capS: 200 }],
  'nats-metrics': [{ args: [], capS: 80 }],
  gateway: [
    { args: ['--rounds', '3', '--seconds', '1'], capS: 60 },
    { args: ['--rounds', '3', '--seconds', '1', '--predict-ms', '1'], capS: 60 },
  ],
  'core-pipeline': [{ args: ['--seconds', '0.5'], capS: 40 }],
  batching: [{ args: ['--rounds', '2'], capS: 50 }],
  'replica-start': [{ args: ['--rounds', '3'], capS: 70 }],
  'scale-from-zero': [{ args: ['--rounds', '3'], capS: 70 }],
  'python-bridge': [{ args: ['--rounds', '2', '--no-2x'], capS: 150 }],
  'model-load': [{ args: ['--mb', '64', '--rounds', '2'], capS: 60 }],
  'scale-reaction': [{ args: [], capS: 90 }],
};

/** Every `*.bench.ts` in benchmarks/, `PLAN`'s order first, then the others by name. */
export function discoverBenches(dir = BENCH_DIR): string[] {
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.bench.ts'))
    .map((f) => f.slice(0, -'.bench.ts'.length))
    .sort();
  const planned = Object.keys(PLAN).filter((n) => names.includes(n));
  return [...planned, ...names.filter((n) => !planned.includes(n))];
}

interface StepResult {
  readonly bench: string;
  readonly args: readonly string[];
  readonly status: 'ok' | 'failed' | 'timed out' | 'skipped';
  readonly exitCode: number | null;
  readonly seconds: number;
  /** Results files this step wrote (names in the results folder). */
  readonly results: readonly string[];
}

/** Results files named after `bench` (`<bench>.json`, `<bench>-<variant>.json`) written since `sinceMs`. */
function writtenSince(bench: string, sinceMs: number): string[] {
  if (!existsSync(RESULTS_DIR)) return [];
  return readdirSync(RESULTS_DIR).filter(
    (f) => f.endsWith('.json') && (f === `${bench}.json` || f.startsWith(`${bench}-`)) && statSync(join(RESULTS_DIR, f)).mtimeMs >= sinceMs,
  );
}

function runStep(bench: string, args: readonly string[], capMs: number): Promise<{ code: number | null; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(BENCH_DIR, `${bench}.bench.ts`), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
    });
    let timedOut = false;
    let kill: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    }, capMs);
    const stopOnSignal = (): void => void child.kill('SIGTERM');
    process.once('SIGINT', stopOnSignal);
    process.once('SIGTERM', stopOnSignal);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (kill) clearTimeout(kill);
      process.off('SIGINT', stopOnSignal);
      process.off('SIGTERM', stopOnSignal);
      resolve({ code, timedOut });
    });
  });
}

/** A ratio for the table: 3 decimals, `–` when not a number (a leg without data). */
function fmt(x: unknown): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(3) : '–';
}

/** Whether a headline meets its aim: ✓ / ✗, blank without an aim. */
function met(h: Headline): string {
  if (h.aim === undefined || typeof h.ratio !== 'number' || !Number.isFinite(h.ratio)) return '';
  const ok = h.higherIsBetter === false ? h.ratio <= h.aim : h.ratio >= h.aim;
  return ok ? '✓' : '✗';
}

/** SUMMARY.md: one row per headline of every results file this run wrote, then the steps that did not end well. */
export function summaryMarkdown(steps: readonly StepResult[], quick: boolean): string {
  const lines: string[] = [];
  lines.push('# Benchmark summary', '');
  lines.push(
    `Written by \`npm run bench\` (benchmarks/run-all.ts) on ${new Date().toISOString()}: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, Node ${process.version}, load average at the end ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}.${quick ? ' **`--quick` run: smoke figures, not measurements.**' : ''}`,
  );
  lines.push('Every ratio is myelin ÷ the baseline measured in the same run (for times, lower is better).', '');
  lines.push('| benchmark | figure | ratio | baseline | aim | met |', '|---|---|---|---|---|---|');
  const seen = new Set<string>();
  for (const s of steps) {
    for (const file of s.results) {
      // A file two steps both saw (a bench run twice with different arguments) is listed once.
      if (seen.has(file)) continue;
      seen.add(file);
      let data: { headline?: Headline[] };
      try {
        data = JSON.parse(readFileSync(join(RESULTS_DIR, file), 'utf8')) as { headline?: Headline[] };
      } catch {
        continue;
      }
      const name = basename(file, '.json');
      for (const h of data.headline ?? []) {
        const aim = h.aim === undefined ? '' : `${h.higherIsBetter === false ? '≤' : '≥'} ${h.aim}`;
        lines.push(`| ${name} | ${h.metric} | ${fmt(h.ratio)} | ${h.baseline} | ${aim} | ${met(h)} |`);
      }
      if (!data.headline?.length) lines.push(`| ${name} | (no headline in its results) | – | | | |`);
    }
  }
  const bad = steps.filter((s) => s.status !== 'ok');
  if (bad.length > 0) {
    lines.push('', '| benchmark | arguments | status | seconds |', '|---|---|---|---|');
    for (const s of bad) lines.push(`| ${s.bench} | ${s.args.join(' ')} | ${s.status}${s.exitCode !== null ? ` (exit ${s.exitCode})` : ''} | ${s.seconds.toFixed(0)} |`);
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const budgetMs = Number(arg('budget-s', '600')) * 1000;
  const only = arg('only', '').split(',').filter(Boolean);
  const end = Date.now() + budgetMs;
  const benches = discoverBenches().filter((b) => only.length === 0 || only.includes(b));
  const steps: StepResult[] = [];
  for (const bench of benches) {
    const plan = QUICK ? [{ args: ['--quick'], capS: DEFAULT_CAP_S }] : (PLAN[bench] ?? [{ args: [], capS: DEFAULT_CAP_S }]);
    for (const step of plan) {
      const left = end - Date.now();
      if (step.capS * 1000 > left && !QUICK) {
        console.log(`\n=== ${bench} ${step.args.join(' ')}: skipped (cap ${step.capS} s, ${Math.round(left / 1000)} s of the budget left)`);
        steps.push({ bench, args: step.args, status: 'skipped', exitCode: null, seconds: 0, results: [] });
        continue;
      }
      console.log(`\n=== ${bench} ${step.args.join(' ')}`);
      const t0 = Date.now();
      const r = await runStep(bench, step.args, Math.min(step.capS * 1000, Math.max(1000, left)));
      const seconds = (Date.now() - t0) / 1000;
      const status = r.timedOut ? 'timed out' : r.code === 0 ? 'ok' : 'failed';
      steps.push({ bench, args: step.args, status, exitCode: r.code, seconds, results: writtenSince(bench, t0) });
      console.log(`=== ${bench}: ${status} in ${seconds.toFixed(0)} s`);
    }
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, 'SUMMARY.md'), summaryMarkdown(steps, QUICK));
  writeFileSync(join(RESULTS_DIR, 'run-all.json'), `${JSON.stringify({ date: new Date().toISOString(), quick: QUICK, budgetS: budgetMs / 1000, steps }, null, 2)}\n`);
  const total = steps.reduce((s, x) => s + x.seconds, 0);
  console.log(`\n${steps.filter((s) => s.status === 'ok').length}/${steps.length} steps ok in ${total.toFixed(0)} s; wrote ${join(RESULTS_DIR, 'SUMMARY.md')}`);
  process.exitCode = steps.every((s) => s.status === 'ok' || s.status === 'skipped') ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
