import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { ContainerModule } from 'inversify';
import { pino } from 'pino';
import type { ApiSpec, AutoscalingSpec } from '../../../core/config/api-spec.js';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import { formatDuration } from '../../../core/config/quantities.js';
import { ScalingPolicyRegistry } from '../../../core/contribution/scaling-policy-registry.js';
import { formatConfigProblem } from '../../../core/errors.js';
import { parseLoadTrace } from '../../../core/scaling/load-trace.js';
import { replayTrace } from '../../../core/scaling/replay-trace.js';
import type { ScalingTick } from '../../../core/scaling/scaling-tick.js';
import { scalingBurstModule } from '../../../plugins/scaling-burst/scaling-burst-module.js';
import { scalingCortexModule } from '../../../plugins/scaling-cortex/scaling-cortex-module.js';
import { scalingCpuModule } from '../../../plugins/scaling-cpu/scaling-cpu-module.js';
import { createContainer } from '../../composition/composition-root.js';
import { ExitError } from '../exit-error.js';
import { renderTable, type Column } from '../table.js';

export interface SimulateOptions {
  /** The configuration file (both dialects), resolved against `cwd`. */
  readonly config: string;
  /** Which API of the file (required when it has several). */
  readonly api?: string;
  /** The load trace, `.csv` or `.jsonl` (or say which with `traceFormat`). */
  readonly trace: string;
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
  const { specs, warnings } = await loadApiSpecsFromFile(options.config, { files: nodeProjectFileSystem, cwd: options.cwd });
  for (const w of warnings) options.stderr?.write(`${formatConfigProblem(w)}\n`);
  const spec = pickApi(specs, options.api, options.config);

  const format = options.traceFormat ?? traceFormatOf(options.trace);
  let text: string;
  try {
    text = await readFile(resolve(options.cwd, options.trace), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ExitError(1, `error: cannot read the trace ${options.trace} (${code === 'ENOENT' ? 'no such file' : (code ?? String(err))})`);
  }
  const trace = parseLoadTrace(text, format, options.trace);

  const container = createContainer({
    logger: pino({ level: 'silent' }),
    modules: [
      scalingCortexModule,
      scalingBurstModule,
      scalingCpuModule,
      new ContainerModule(({ bind }) => {
        bind(ScalingPolicyRegistry).toSelf().inSingletonScope();
      }),
    ],
  });
  const policy = container.get(ScalingPolicyRegistry).get(spec.autoscaling.policy);
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
  const result: SimulateResult = { api: spec.name, policy: policy.kind, autoscaling: spec.autoscaling, rows: ticks.map(toRow) };
  options.stdout.write(renderSimulation(result, options.output));
  return result;
}

function toRow(t: ScalingTick): SimulateRow {
  const d = t.decision;
  return {
    t: t.atMs / 1000,
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
  if (output === 'json') return `${JSON.stringify({ api: r.api, policy: r.policy, autoscaling: r.autoscaling, ticks: r.rows }, null, 2)}\n`;
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
