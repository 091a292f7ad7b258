/**
 * Parsers for the quantities a configuration file writes as text: durations (Go's `time.Duration`
 * syntax, as Cortex used), CPU and memory (Kubernetes quantities) and int-or-percent (Kubernetes
 * `IntOrString`). Each returns `{ ok: true, value }` or `{ ok: false, message }`; none throws, so
 * the config loader can report every problem of a file at once. The message says what was found and
 * what is allowed.
 */
import type { IntOrPercent } from './api-spec.js';

export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

const ok = <T>(value: T): ParseResult<T> => ({ ok: true, value });
const fail = <T>(message: string): ParseResult<T> => ({ ok: false, message });

/** Renders a found value for messages: strings quoted, everything else as JSON. */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return JSON.stringify(v) ?? String(v);
}

/** Go duration units in milliseconds, plus `d` (24h) which only {@link DurationOptions.allowDays} admits. */
const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Matches a whole duration string: one or more `<number><unit>` groups (`250ms`, `60s`, `5m`, `1h30m`,
 * `1.5h`), or a bare `0`. The JSON Schemas use the same pattern (`DURATION_PATTERN`).
 */
export const DURATION_PATTERN = '^(([0-9]+(\\.[0-9]+)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$|^0$';
const DURATION_PART = /([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)/y;
const DURATION_PART_WITH_DAYS = /([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h|d)/y;

/** Durations longer than this are refused (about 292 years is Go's limit; a week is plenty here). */
export const MAX_DURATION_MS = 7 * 24 * 3_600_000;

/** How {@link parseDuration} reads its input; the defaults are the config-file rules. */
export interface DurationOptions {
  /** Also accept `d` (24 h) as a unit, e.g. for a command-line `--since 2d`. Default false (Go has no `d`). */
  readonly allowDays?: boolean;
  /** Longest duration accepted, in milliseconds. Default {@link MAX_DURATION_MS}; `Infinity` for no limit. */
  readonly maxMs?: number;
}

/**
 * Parses a Go-style duration into milliseconds: `250ms` → 250, `60s` → 60000, `5m` → 300000,
 * `1h30m` → 5400000, `0` → 0. Units ns, us (µs), ms, s, m, h (and d with `allowDays`); a sign is not
 * allowed. Results are rounded to whole milliseconds. A bare number (`60`) is refused because its unit
 * would be a guess. This is the project's only duration parser: config files and CLI flags both use it.
 */
export function parseDuration(input: unknown, options: DurationOptions = {}): ParseResult<number> {
  const maxMs = options.maxMs ?? MAX_DURATION_MS;
  const hint = `a duration such as "250ms", "60s", "5m"${options.allowDays ? ', "1h30m" or "2d"' : ' or "1h30m"'}`;
  if (typeof input === 'number') return fail(`must be ${hint}, with a unit (got ${describeValue(input)})`);
  if (typeof input !== 'string') return fail(`must be ${hint} (got ${describeValue(input)})`);
  const s = input;
  if (s === '0') return ok(0);
  if (s.length === 0 || s.length > 64) return fail(`invalid duration (got ${describeValue(input)}, must be ${hint})`);
  const part = options.allowDays ? DURATION_PART_WITH_DAYS : DURATION_PART;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    part.lastIndex = pos;
    const m = part.exec(s);
    if (m === null) return fail(`invalid duration (got ${describeValue(input)}, must be ${hint})`);
    total += Number(m[1]) * DURATION_UNITS_MS[m[2]];
    pos = part.lastIndex;
  }
  const ms = Math.round(total);
  if (!Number.isFinite(ms) || ms > maxMs) {
    return fail(Number.isFinite(maxMs) ? `must be at most ${formatDuration(maxMs)} (got ${describeValue(input)})` : `is too large (got ${describeValue(input)})`);
  }
  return ok(ms);
}

/** Formats milliseconds the way users write durations: `250ms`, `60s`, `5m`, `1h30m`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 1000 !== 0) return `${ms}ms`;
  let s = ms / 1000;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}

/** Matches a CPU quantity string: `200m`, `1`, `0.5`, `2`, `1.5`. */
export const CPU_PATTERN = '^([0-9]+(\\.[0-9]+)?|\\.[0-9]+)m?$';
const CPU_RE = new RegExp(CPU_PATTERN);

/**
 * Parses a CPU quantity into millicores: `200m` → 200, `1` → 1000, `0.5` → 500, `2` → 2000; numbers
 * are cores (`cpu: 1` in YAML). A fraction of a millicore rounds up, as Kubernetes does.
 */
export function parseCpu(input: unknown): ParseResult<number> {
  const hint = 'a CPU quantity such as "200m", "0.5", 1 or 2';
  let cores: number;
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) return fail(`must be ${hint} (got ${describeValue(input)})`);
    cores = input;
  } else if (typeof input === 'string') {
    const s = input;
    if (!CPU_RE.test(s)) return fail(`invalid CPU quantity (got ${describeValue(input)}, must be ${hint})`);
    cores = s.endsWith('m') ? Number(s.slice(0, -1)) / 1000 : Number(s);
  } else {
    return fail(`must be ${hint} (got ${describeValue(input)})`);
  }
  const millis = Math.ceil(Math.round(cores * 1e9) / 1e6);
  if (!Number.isSafeInteger(millis)) return fail(`is too large (got ${describeValue(input)})`);
  return ok(millis);
}

/** Formats millicores as users write them: 200 → `200m`, 1000 → `1`, 1500 → `1500m`. */
export function formatCpu(millis: number): string {
  return millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`;
}

const MEMORY_SUFFIX_BYTES: Readonly<Record<string, number>> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** Matches a memory quantity string: `200Mi`, `1Gi`, `200M`, `1G`, `512Ki`, `1048576`. */
export const MEMORY_PATTERN = '^([0-9]+(\\.[0-9]+)?|\\.[0-9]+)(k|K|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$';
const MEMORY_RE = /^([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(k|K|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/**
 * Parses a memory quantity into bytes: `200Mi` → 209715200, `1Gi` → 1073741824, `200M` → 200000000,
 * `1G` → 1e9, `1048576` (or the YAML number) → 1048576. Binary suffixes Ki…Ei, decimal k/K, M…E.
 * A fraction of a byte rounds up, as Kubernetes does.
 */
export function parseMemory(input: unknown): ParseResult<number> {
  const hint = 'a memory quantity such as "200Mi", "1Gi", "200M", "1G" or a number of bytes';
  let bytes: number;
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) return fail(`must be ${hint} (got ${describeValue(input)})`);
    bytes = input;
  } else if (typeof input === 'string') {
    const m = MEMORY_RE.exec(input);
    if (m === null) return fail(`invalid memory quantity (got ${describeValue(input)}, must be ${hint})`);
    bytes = Number(m[1]) * MEMORY_SUFFIX_BYTES[m[2] ?? ''];
  } else {
    return fail(`must be ${hint} (got ${describeValue(input)})`);
  }
  const rounded = Math.ceil(bytes);
  if (!Number.isSafeInteger(rounded)) return fail(`is too large (got ${describeValue(input)})`);
  return ok(rounded);
}

/**
 * Formats bytes with the suffix that divides them exactly and gives the smallest number, binary or
 * decimal as the user would have written them: 209715200 → `200Mi`, 2000000000 → `2G`, 1000 → `1k`.
 */
export function formatMemory(bytes: number): string {
  const units: readonly [string, number][] = [
    ['Ei', 2 ** 60],
    ['E', 1e18],
    ['Pi', 2 ** 50],
    ['P', 1e15],
    ['Ti', 2 ** 40],
    ['T', 1e12],
    ['Gi', 2 ** 30],
    ['G', 1e9],
    ['Mi', 2 ** 20],
    ['M', 1e6],
    ['Ki', 2 ** 10],
    ['k', 1e3],
  ];
  let best = String(bytes);
  let bestValue = bytes;
  for (const [suffix, size] of units) {
    const v = bytes / size;
    if (bytes >= size && Number.isInteger(v) && v < bestValue) {
      best = `${v}${suffix}`;
      bestValue = v;
    }
  }
  return best;
}

/** Matches an int-or-percent string: `5`, `10%`. */
export const INT_OR_PERCENT_PATTERN = '^[0-9]+%?$';
const INT_OR_PERCENT_RE = /^([0-9]+)(%?)$/;

/**
 * Parses Kubernetes' IntOrString as `update_strategy` uses it: `5` (or the string `"5"`) is an absolute
 * count ≥ 0; `10%` a percentage in 0–100 of the desired replicas.
 */
export function parseIntOrPercent(input: unknown): ParseResult<IntOrPercent> {
  const hint = 'an integer such as 5 or a percentage such as "10%"';
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) return fail(`must be ${hint}, at least 0 (got ${describeValue(input)})`);
    return ok({ kind: 'absolute', value: input });
  }
  if (typeof input !== 'string') return fail(`must be ${hint} (got ${describeValue(input)})`);
  const m = INT_OR_PERCENT_RE.exec(input);
  if (m === null) return fail(`invalid value (got ${describeValue(input)}, must be ${hint})`);
  const value = Number(m[1]);
  if (m[2] === '%') {
    if (value > 100) return fail(`must be a percentage between 0% and 100% (got ${describeValue(input)})`);
    return ok({ kind: 'percent', value });
  }
  if (!Number.isSafeInteger(value)) return fail(`is too large (got ${describeValue(input)})`);
  return ok({ kind: 'absolute', value });
}

/** Formats an IntOrPercent as written: `{percent 25}` → `25%`, `{absolute 5}` → `5`. */
export function formatIntOrPercent(v: IntOrPercent): string {
  return v.kind === 'percent' ? `${v.value}%` : String(v.value);
}
