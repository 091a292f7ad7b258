import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import type { ApiSpec, AutoscalingSpec } from '../../../core/config/api-spec.js';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import { formatDuration, parseDuration } from '../../../core/config/quantities.js';
import { formatConfigProblem } from '../../../core/errors.js';
import { parseLoadTrace } from '../../../core/scaling/load-trace.js';
import { replayTrace } from '../../../core/scaling/replay-trace.js';
import type { ScalingTick } from '../../../core/scaling/scaling-tick.js';
import { controlToken, DEFAULT_CONTROL_URL } from '../../client/myelin-client.js';
import type { InFlightPoint } from '../../daemon/in-flight-recording.js';
import { applyOverrides, parseSetOptions, scalingPolicies, whatIf, WhatIfError } from '../../dashboard/what-if.js';
import { ExitError } from '../exit-error.js';
import { renderTable, type Column } from '../table.js';

export interface SimulateOptions {
  /** The configuration file (both dialects), resolved against `cwd`; with `trace`. */
  readonly config?: string;
  /** Which API of the file (required when it has several), or of the daemon with `since`. */
  readonly api?: string;
  /** The load trace, `.csv` or `.jsonl` (or say which with `traceFormat`). */
  readonly trace?: string;
  /**
   * Instead of a config and a trace: replay the daemon's recording of `api` over this last stretch
   * (`30m`), with the autoscaling it runs (what-if.ts). The daemon is `url` / `stateDir` as for other commands.
   */
  readonly since?: string;
  /** Autoscaling fields changed for the replay, `window=30s` (config-file names; what-if.ts). */
  readonly set?: readonly string[];
  readonly url?: string;
  readonly stateDir?: string;
  readonly traceFormat?: 'csv' | 'jsonl';
  readonly output: 'table' | 'json' | 'csv';
  /** Replay until this trace time, seconds (default: the trace's last line). */
  readonly until?: number;
  /** Replicas at the start (default: the API's init_replicas). */
  readonly replicas?: number;
  readonly cwd: string;
  readonly stdout: Writable;
  readonly stderr?: Writable;
}

/** One tick as `myelin simulate` prints it. Numbers are as the policy used them (full precision in json/csv). */
export interface SimulateRow {
  /** Trace time of the tick, seconds. */
  readonly t: number;
  /** Replicas with a fresh sample at the tick. */
  readonly reporting: number;
  /** Mean total in flight over the window (cpu policy: mean CPU utilization, percent); null without data. */
  readonly avg: number | null;
  readonly raw: number | null;
  readonly recommendation: number | null;
  /** Replicas before the tick's decision. */
  readonly from: number;
  /** Replicas after the tick's decision. */
  readonly replicas: number;
  /** burst only: panic mode active after the tick. */
  readonly panic: boolean | null;
  readonly reason: string;
}

export interface SimulateResult {
  readonly api: string;
  /** With `since`: the start of the replayed range, ms since the epoch (row times count from it). */
  readonly sinceMs?: number;
  readonly policy: string;
  readonly autoscaling: AutoscalingSpec;
  readonly rows: readonly SimulateRow[];
}

/**
 * `myelin simulate --config <file> [--api name] --trace <csv|jsonl>`: replays a load trace through the
 * real pipeline and policy of one API in virtual time (see core/scaling/replay-trace.ts) and prints
 * every tick. Returns the rows; throws `ConfigError` for a bad config or trace and `ExitError(1)`
 * when the API cannot be chosen or a file cannot be read.
 */
export async function simulate(options: SimulateOptions): Promise<SimulateResult> {
  const set = overridesOf(options.set);
  if (options.since !== undefined) {
    if (options.config !== undefined || options.trace !== undefined) throw new ExitError(1, 'error: give either --since (the daemon\'s recording) or --config with --trace, not both');
    const result = await simulateRecording(options, set);
    options.stdout.write(renderSimulation(result, options.output));
    return result;
  }
  if (options.config === undefined || options.trace === undefined) {
    throw new ExitError(1, 'error: give --config <file> and --trace <file> (a load trace), or --api <name> --since <duration> (the daemon\'s recording)');
  }
  const { specs, warnings } = await loadApiSpecsFromFile(options.config, { files: nodeProjectFileSystem, cwd: options.cwd });
  for (const w of warnings) options.stderr?.write(`${formatConfigProblem(w)}\n`);
  const picked = pickApi(specs, options.api, options.config);
  const spec = Object.keys(set).length === 0 ? picked : { ...picked, autoscaling: withOverrides(picked.autoscaling, set) };

  const format = options.traceFormat ?? traceFormatOf(options.trace);
  let text: string;
  try {
    text = await readFile(resolve(options.cwd, options.trace), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ExitError(1, `error: cannot read the trace ${options.trace} (${code === 'ENOENT' ? 'no such file' : (code ?? String(err))})`);
  }
  const trace = parseLoadTrace(text, format, options.trace);

  const policy = scalingPolicies().get(spec.autoscaling.policy);
  if (options.replicas !== undefined && (!Number.isInteger(options.replicas) || options.replicas < 1)) {
    throw new ExitError(1, `error: --replicas must be a whole number ≥ 1 (got ${options.replicas})`);
  }
  const ticks = replayTrace({
    api: spec.name,
    spec: spec.autoscaling,
    policy,
    trace,
    replicas: options.replicas,
    untilSec: options.until,
  });
  const result: SimulateResult = { api: spec.name, policy: policy.kind, autoscaling: spec.autoscaling, rows: ticks.map((t) => toRow(t)) };
  options.stdout.write(renderSimulation(result, options.output));
  return result;
}

/**
 * `--since`: the daemon's recording of the API (`GET /v1/dashboard/recording`) replayed through the same
 * pipeline as a trace (`whatIf`, which calls `replayTrace`), rows timed from the start of the range.
 */
async function simulateRecording(options: SimulateOptions, set: Record<string, string>): Promise<SimulateResult> {
  if (options.api === undefined) throw new ExitError(1, 'error: --since needs --api <name>: which API\'s recording to replay');
  if (options.replicas !== undefined || options.until !== undefined) throw new ExitError(1, 'error: --replicas and --until apply to a trace; with --since the replay starts from the recorded count');
  const since = parseDuration(options.since, { allowDays: true });
  if (!since.ok) throw new ExitError(1, `error: --since ${since.message}`);
  const recording = await fetchRecording(options, options.api);
  const sinceMs = Date.now() - since.value;
  let r;
  try {
    r = whatIf({ autoscaling: recording.autoscaling, createdMs: recording.createdMs, points: recording.points, sinceMs, set });
  } catch (err) {
    if (err instanceof WhatIfError) throw new ExitError(1, `error: ${err.message}`);
    throw err;
  }
  return { api: options.api, sinceMs, policy: r.policy, autoscaling: r.autoscaling, rows: r.ticks.map((t) => toRow(t, sinceMs)) };
}

async function fetchRecording(o: SimulateOptions, api: string): Promise<{ autoscaling: AutoscalingSpec; createdMs: number; points: InFlightPoint[] }> {
  const url = (o.url ?? process.env.MYELIN_URL ?? DEFAULT_CONTROL_URL).replace(/\/+$/, '');
  const token = await controlToken(url, { stateDir: o.stateDir });
  let res: Response;
  try {
    res = await fetch(`${url}/v1/dashboard/recording?api=${encodeURIComponent(api)}&since=0`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  } catch (err) {
    throw new ExitError(1, `error: cannot reach the myelin daemon at ${url} (${(err as { cause?: { code?: string } }).cause?.code ?? String(err)}); start it with \`myelin up\` or pick another with --url / MYELIN_URL`);
  }
  const body = (await res.json().catch(() => ({}))) as { error?: string; autoscaling?: AutoscalingSpec; createdMs?: number; points?: InFlightPoint[] };
  if (!res.ok || !body.autoscaling || !body.points) throw new ExitError(1, `error: ${body.error ?? `the daemon answered HTTP ${res.status}`}`);
  return { autoscaling: body.autoscaling, createdMs: body.createdMs ?? 0, points: body.points };
}

function overridesOf(items: readonly string[] | undefined): Record<string, string> {
  try {
    return parseSetOptions(items ?? []);
  } catch (err) {
    throw new ExitError(1, `error: ${(err as Error).message}`);
  }
}

function withOverrides(a: AutoscalingSpec, set: Record<string, string>): AutoscalingSpec {
  try {
    return applyOverrides(a, set, scalingPolicies().kinds());
  } catch (err) {
    if (err instanceof WhatIfError) throw new ExitError(1, `error: --set ${err.message}`);
    throw err;
  }
}

function toRow(t: ScalingTick, originMs = 0): SimulateRow {
  const d = t.decision;
  return {
    t: (t.atMs - originMs) / 1000,
    reporting: t.load.replicasReporting,
    avg: d.avg,
    raw: d.raw,
    recommendation: d.recommendation,
    from: d.current,
    replicas: d.desired,
    panic: d.panic ? d.panic.active : null,
    reason: d.reason,
  };
}

function pickApi(specs: readonly ApiSpec[], api: string | undefined, file: string): ApiSpec {
  if (api !== undefined) {
    const s = specs.find((x) => x.name === api);
    if (!s) throw new ExitError(1, `error: ${file} has no API named "${api}" (it has ${specs.map((x) => x.name).join(', ')})`);
    return s;
  }
  if (specs.length === 1) return specs[0];
  throw new ExitError(1, `error: ${file} has ${specs.length} APIs; choose one with --api (${specs.map((s) => s.name).join(', ')})`);
}

function traceFormatOf(file: string): 'csv' | 'jsonl' {
  const ext = extname(file).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  throw new ExitError(1, `error: cannot tell the trace format from "${file}"; name it .csv or .jsonl, or pass --trace-format`);
}

const num = (x: number | null): string => (x === null ? '-' : String(Number(x.toFixed(3))));

/** The tick list for people (table) or scripts (`json`: `{ api, policy, autoscaling, ticks }`; `csv`). */
export function renderSimulation(r: SimulateResult, output: SimulateOptions['output']): string {
  if (output === 'json') return `${JSON.stringify({ api: r.api, ...(r.sinceMs !== undefined ? { sinceMs: r.sinceMs } : {}), policy: r.policy, autoscaling: r.autoscaling, ticks: r.rows }, null, 2)}\n`;
  if (output === 'csv') {
    const head = 't,reporting,avg,raw,recommendation,from,replicas,panic,reason';
    const cell = (x: number | boolean | null) => (x === null ? '' : String(x));
    const lines = r.rows.map((x) =>
      [cell(x.t), cell(x.reporting), cell(x.avg), cell(x.raw), cell(x.recommendation), cell(x.from), cell(x.replicas), cell(x.panic), `"${x.reason.replaceAll('"', '""')}"`].join(','),
    );
    return `${[head, ...lines].join('\n')}\n`;
  }
  const a = r.autoscaling;
  const target = r.policy === 'cpu' ? `${a.targetCpuUtilization}% cpu` : `${a.targetReplicaConcurrency} in flight per replica`;
  const header =
    (r.sinceMs !== undefined ? `the daemon's recording of ${r.api} since ${new Date(r.sinceMs).toISOString()} (t counts from there)\n` : '') +
    `${r.api}: policy ${r.policy}, tick ${formatDuration(a.tickMs)}, window ${formatDuration(a.windowMs)}, target ${target}, ` +
    `replicas ${a.minReplicas}..${a.maxReplicas}\n`;
  const columns: Column<SimulateRow>[] = [
    { title: 't (s)', value: (x) => num(x.t) },
    { title: r.policy === 'cpu' ? 'avg cpu %' : 'avg in flight', value: (x) => num(x.avg) },
    { title: 'raw', value: (x) => num(x.raw) },
    { title: 'rec', value: (x) => (x.recommendation === null ? '-' : x.recommendation) },
    { title: 'replicas', value: (x) => (x.replicas === x.from ? String(x.replicas) : `${x.from} → ${x.replicas}`) },
    { title: 'reason', value: (x) => x.reason },
  ];
  return header + (r.rows.length === 0 ? 'no ticks: the trace is shorter than one tick\n' : renderTable(r.rows, columns));
}
