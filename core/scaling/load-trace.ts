import { ConfigError, type ConfigProblem } from '../errors.js';

/**
 * A load trace for `myelin simulate`: what an API's load was over time, as a step function (each
 * point holds until the next one).
 * - `total` mode: the API's total requests in flight; the simulator spreads it evenly over however
 *   many replicas the decisions ask for.
 * - `replicas` mode: recorded per-replica in-flight values; those replicas report them whatever
 *   the decisions (the count in the output still follows the decisions).
 * A null value means nobody reports (a metrics outage).
 */
export interface LoadTrace {
  readonly mode: 'total' | 'replicas';
  /** Replica ids in `replicas` mode (column or key order of first appearance). */
  readonly replicaIds: readonly string[];
  readonly points: readonly TracePoint[];
}

export interface TracePoint {
  /** Seconds from any origin; non-decreasing. */
  readonly tSec: number;
  /** `total` mode: the API's total in flight; null = no replica reports. */
  readonly total: number | null;
  /** `replicas` mode: in flight per replica id; a missing or null entry = that replica is silent. */
  readonly replicas: Readonly<Record<string, number | null>>;
  /** Mean CPU utilization of every replica (fraction of its request, 0.8 = 80 %), for the cpu policy. */
  readonly cpu: number | null;
}

const TIME_NAMES = new Set(['t', 'time', 'sec', 'secs', 'second', 'seconds', 'time_s', 't_s']);
const TOTAL_NAMES = new Set(['inflight', 'in_flight', 'in-flight', 'total', 'total_in_flight', 'load']);
const CPU_NAMES = new Set(['cpu', 'cpu_utilization', 'cpuutilization']);

/**
 * Parses a trace file's text. `format` is taken from the caller (`csv` or `jsonl`, usually from the
 * file extension). Throws `ConfigError` listing every bad line as `<file>:<line>:<col>: <message>`.
 *
 * CSV: `#` comments and blank lines are skipped; an optional header names the columns (`t`, then
 * `inflight` for a total, `cpu`, or replica ids); without a header, `t,total` or `t,r1,r2,…`. An empty
 * cell is null (silent). JSONL: one object per line, `{"t": 12, "inFlight": 8}` or
 * `{"t": 12, "replicas": {"a": 3, "b": 5}}` (or a list), with an optional `"cpu": 0.7`.
 */
export function parseLoadTrace(text: string, format: 'csv' | 'jsonl', file: string): LoadTrace {
  const problems: ConfigProblem[] = [];
  const problem = (line: number, col: number, message: string) => problems.push({ file, line, col, message, severity: 'error' });
  const raw = format === 'csv' ? parseCsv(text, problem) : parseJsonl(text, problem);
  let prev = -Infinity;
  for (const p of raw.points) {
    if (p.point.tSec < prev) problem(p.line, 1, `time ${p.point.tSec} s goes backwards (previous ${prev} s)`);
    prev = Math.max(prev, p.point.tSec);
  }
  if (problems.length === 0 && raw.points.length === 0) problem(1, 1, 'the trace has no data lines');
  if (problems.length > 0) throw new ConfigError(problems.slice(0, 50));
  return { mode: raw.mode, replicaIds: raw.replicaIds, points: raw.points.map((p) => p.point) };
}

type Problem = (line: number, col: number, message: string) => void;
interface RawTrace {
  mode: 'total' | 'replicas';
  replicaIds: string[];
  points: { line: number; point: TracePoint }[];
}

function value(cell: string, what: string, line: number, col: number, problem: Problem): number | null | undefined {
  const s = cell.trim();
  if (s === '' || s === '-' || s.toLowerCase() === 'null') return null;
  const n = Number(s);
  if (!Number.isFinite(n) || n < 0) {
    problem(line, col, `${what} must be a number ≥ 0 or empty (got "${s}")`);
    return undefined;
  }
  return n;
}

function parseCsv(text: string, problem: Problem): RawTrace {
  const out: RawTrace = { mode: 'total', replicaIds: [], points: [] };
  let columns: { kind: 'time' | 'total' | 'cpu' | 'replica'; id: string }[] | null = null;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i];
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const cells = line.split(',');
    if (columns === null) {
      const first = cells[0].trim();
      if (!Number.isFinite(Number(first)) || first === '') {
        // A header line.
        if (!TIME_NAMES.has(first.toLowerCase())) problem(lineNo, 1, `the first column must be the time in seconds (named t); got "${first}"`);
        columns = cells.map((c, k) => {
          const name = c.trim();
          const lower = name.toLowerCase();
          if (k === 0) return { kind: 'time', id: name };
          if (TOTAL_NAMES.has(lower)) return { kind: 'total', id: name };
          if (CPU_NAMES.has(lower)) return { kind: 'cpu', id: name };
          if (name === '') problem(lineNo, colOf(line, k), 'empty column name');
          return { kind: 'replica', id: name };
        });
        setMode(columns, lineNo, problem, out);
        continue;
      }
      columns = cells.length <= 2 ? [{ kind: 'time', id: 't' }, { kind: 'total', id: 'inflight' }] : cells.map((_, k) => (k === 0 ? { kind: 'time', id: 't' } : { kind: 'replica', id: `r${k}` }));
      setMode(columns, lineNo, problem, out);
    }
    if (cells.length !== columns.length) {
      problem(lineNo, 1, `expected ${columns.length} columns, got ${cells.length}`);
      continue;
    }
    const t = Number(cells[0].trim());
    if (cells[0].trim() === '' || !Number.isFinite(t)) {
      problem(lineNo, 1, `time must be a number of seconds (got "${cells[0].trim()}")`);
      continue;
    }
    let total: number | null = null;
    let cpu: number | null = null;
    const replicas: Record<string, number | null> = {};
    let bad = false;
    for (let k = 1; k < cells.length; k++) {
      const c = columns[k];
      const v = value(cells[k], c.kind === 'cpu' ? 'cpu' : `${c.id}`, lineNo, colOf(line, k), problem);
      if (v === undefined) {
        bad = true;
        continue;
      }
      if (c.kind === 'total') total = v;
      else if (c.kind === 'cpu') cpu = v;
      else replicas[c.id] = v;
    }
    if (!bad) out.points.push({ line: lineNo, point: { tSec: t, total, replicas, cpu } });
  }
  return out;
}

function setMode(columns: { kind: string; id: string }[], line: number, problem: Problem, out: RawTrace): void {
  const totals = columns.filter((c) => c.kind === 'total').length;
  const reps = columns.filter((c) => c.kind === 'replica');
  if (totals > 1) problem(line, 1, 'more than one total in-flight column');
  if (totals === 1 && reps.length > 0) problem(line, 1, `give either a total in-flight column or per-replica columns, not both (replicas: ${reps.map((r) => r.id).join(', ')})`);
  if (totals === 0 && reps.length === 0) problem(line, 1, 'no in-flight column (add inflight, or one column per replica)');
  const ids = new Set<string>();
  for (const r of reps) {
    if (ids.has(r.id)) problem(line, 1, `replica column "${r.id}" appears twice`);
    ids.add(r.id);
  }
  out.mode = reps.length > 0 ? 'replicas' : 'total';
  out.replicaIds = reps.map((r) => r.id);
}

function colOf(line: string, cellIndex: number): number {
  let col = 1;
  for (let k = 0; k < cellIndex; k++) col = line.indexOf(',', col - 1) + 2;
  return col;
}

function parseJsonl(text: string, problem: Problem): RawTrace {
  const out: RawTrace = { mode: 'total', replicaIds: [], points: [] };
  const ids: string[] = [];
  let sawTotal = false;
  let sawReplicas = false;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      problem(lineNo, 1, `not JSON: ${(err as Error).message}`);
      continue;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      problem(lineNo, 1, 'expected a JSON object such as {"t": 0, "inFlight": 4}');
      continue;
    }
    const o = obj as Record<string, unknown>;
    const t = o.t ?? o.time;
    if (typeof t !== 'number' || !Number.isFinite(t)) {
      problem(lineNo, 1, `"t" must be a number of seconds (got ${JSON.stringify(t)})`);
      continue;
    }
    const num = (v: unknown, what: string): number | null | undefined => {
      if (v === null) return null;
      if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
      problem(lineNo, 1, `${what} must be a number ≥ 0 or null (got ${JSON.stringify(v)})`);
      return undefined;
    };
    const totalRaw = 'inFlight' in o ? o.inFlight : 'total' in o ? o.total : undefined;
    const replicasRaw = o.replicas;
    if (totalRaw !== undefined && replicasRaw !== undefined) {
      problem(lineNo, 1, 'give either "inFlight" or "replicas", not both');
      continue;
    }
    if (totalRaw === undefined && replicasRaw === undefined) {
      problem(lineNo, 1, 'missing "inFlight" (total in flight) or "replicas" (per-replica values)');
      continue;
    }
    const cpu = o.cpu === undefined ? null : num(o.cpu, '"cpu"');
    if (cpu === undefined) continue;
    if (totalRaw !== undefined) {
      sawTotal = true;
      const total = num(totalRaw, '"inFlight"');
      if (total === undefined) continue;
      out.points.push({ line: lineNo, point: { tSec: t, total, replicas: {}, cpu } });
      continue;
    }
    sawReplicas = true;
    const entries: [string, unknown][] = Array.isArray(replicasRaw)
      ? replicasRaw.map((v, k) => [`r${k + 1}`, v])
      : replicasRaw !== null && typeof replicasRaw === 'object'
        ? Object.entries(replicasRaw)
        : [];
    if (!Array.isArray(replicasRaw) && (replicasRaw === null || typeof replicasRaw !== 'object')) {
      problem(lineNo, 1, '"replicas" must be an object {"id": inFlight} or a list');
      continue;
    }
    const replicas: Record<string, number | null> = {};
    let bad = false;
    for (const [id, v] of entries) {
      const n = num(v, `"replicas.${id}"`);
      if (n === undefined) bad = true;
      else replicas[id] = n;
      if (!ids.includes(id)) ids.push(id);
    }
    if (!bad) out.points.push({ line: lineNo, point: { tSec: t, total: null, replicas, cpu } });
  }
  if (sawTotal && sawReplicas) problem(1, 1, 'mixes lines with "inFlight" and lines with "replicas"; use one kind per trace');
  out.mode = sawReplicas ? 'replicas' : 'total';
  out.replicaIds = ids;
  return out;
}
