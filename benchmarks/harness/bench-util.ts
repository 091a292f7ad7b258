/**
 * Small helpers the benchmarks share: command-line flags, order statistics, a plain-text table, and
 * the results file. Pure functions (no I/O) but for `writeResults`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * benchmarks/results/, where every bench writes its JSON (ignored by git); `MYELIN_BENCH_RESULTS_DIR`
 * moves it (test/benchmarks/quick.test.ts writes its smoke runs to a temporary folder).
 */
export const RESULTS_DIR = process.env.MYELIN_BENCH_RESULTS_DIR || fileURLToPath(new URL('../results/', import.meta.url));

/**
 * True with `--quick`: every bench then does a tiny bounded run (a fraction of a second per leg, one
 * round) that still writes its JSON with the same fields, for test/benchmarks/quick.test.ts. Its
 * figures are not measurements.
 */
export const QUICK = process.argv.includes('--quick');

/**
 * One figure of a bench's summary line: `ratio` is myelin ÷ `baseline` (measured in the same run),
 * `aim` the goal when there is one, `higherIsBetter` false for times and sizes (a start-up ratio of
 * 0.8 is good). Every bench writes a `headline` list of these in its results JSON; `npm run bench`
 * (benchmarks/run-all.ts) puts them in benchmarks/results/SUMMARY.md.
 */
export interface Headline {
  /** What is compared, e.g. `onnx-iris in-thread c=8 req/s`. */
  readonly metric: string;
  /** myelin ÷ baseline; NaN becomes null in the JSON when a leg had no data. */
  readonly ratio: number;
  /** What the ratio is against, e.g. `hand-written node:http + onnxruntime`. */
  readonly baseline: string;
  readonly aim?: number;
  /** Default true (throughput); false for latencies, times, sizes. */
  readonly higherIsBetter?: boolean;
}

/** The value after `--name` on the command line, else `fallback` (e.g. `--seconds 0.3` ⇒ arg('seconds', '1') = '0.3'). */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

/** The median of `xs` in their own unit (any order; NaN when empty): [3, 1, 2] ⇒ 2, [1, 2, 3, 4] ⇒ 2.5. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * The `p`-th percentile (0–100) of `sorted` (ascending, in its own unit), nearest rank below: the
 * element at floor(p/100 × n), the last for p = 100; NaN when empty. 100 latencies, p99 ⇒ the 100th.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** `head` and `rows` as left-aligned columns two spaces apart, one line each. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

/**
 * Writes benchmarks/results/<name>.json: the date (ISO 8601), Node's version, the number of CPUs and
 * their model, whether it was a `--quick` run, then `data` (with its `headline`), indented. Returns
 * the file's path.
 */
export function writeResults(name: string, data: Record<string, unknown> & { readonly headline?: readonly Headline[] }): string {
  const out = join(RESULTS_DIR, `${name}.json`);
  mkdirSync(dirname(out), { recursive: true });
  const machine = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, quick: QUICK };
  writeFileSync(out, `${JSON.stringify({ ...machine, ...data }, null, 2)}\n`);
  return out;
}
