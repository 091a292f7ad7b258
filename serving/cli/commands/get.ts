import type { Writable } from 'node:stream';
import type { ApiDetail, ApiSummary } from '../../daemon/daemon-service.js';
import { daemonClient, withHints, type ClientOptions } from '../daemon-client.js';
import { formatAge, formatLatency, renderTable, type Column } from '../table.js';

export interface GetOptions extends ClientOptions {
  readonly api?: string;
  readonly output: 'table' | 'json';
  readonly watch: boolean;
  readonly stdout: Writable;
  /** ms since the epoch, for "last update" ages. */
  readonly now?: () => number;
  /** Stops `--watch` (tests); by default it runs until interrupted. */
  readonly signal?: AbortSignal;
}

const summaryColumns = (now: number): Column<ApiSummary>[] => [
  { title: 'api', value: (a) => a.name },
  { title: 'status', value: (a) => a.status },
  { title: 'up-to-date', value: (a) => a.upToDate },
  { title: 'stale', value: (a) => a.stale, hideWhenZero: true },
  { title: 'requested', value: (a) => a.requested },
  { title: 'failed', value: (a) => a.failed, hideWhenZero: true },
  { title: 'last update', value: (a) => formatAge(now - a.lastUpdated) },
  { title: 'avg request', value: (a) => formatLatency(a.requests.avgLatencyMs) },
  { title: '2XX', value: (a) => a.requests['2xx'] || '-' },
  { title: '4XX', value: (a) => a.requests['4xx'] || '-', hideWhenZero: true },
  { title: '5XX', value: (a) => a.requests['5xx'] || '-', hideWhenZero: true },
];

/** Renders `myelin get` (all APIs) as Cortex's table. */
export function renderApiList(apis: readonly ApiSummary[], now: number): string {
  if (apis.length === 0) return 'no apis are deployed\n';
  return renderTable(apis, summaryColumns(now));
}

/** Renders `myelin get <api>`: the one-row table, monitoring, endpoint, autoscaler view and replicas. */
export function renderApiDetail(d: ApiDetail, now: number): string {
  let out = renderTable([d], summaryColumns(now));
  if (d.message) out += `\n${d.message}\n`;
  if (d.monitoring?.modelType === 'classification') {
    const rows = Object.entries(d.monitoring.classes).sort((a, b) => b[1] - a[1]);
    out += '\n';
    out += rows.length === 0 ? 'no predictions tracked yet\n' : renderTable(rows.slice(0, 20), [
      { title: 'class', value: (r) => r[0] },
      { title: 'count', value: (r) => r[1] },
    ]);
    if (rows.length > 20) out += 'listing at most 20 classes\n';
  } else if (d.monitoring?.modelType === 'regression') {
    const m = d.monitoring;
    out += '\n' + renderTable([m], [
      { title: 'min', value: (r) => fmt(r.min) },
      { title: 'max', value: (r) => fmt(r.max) },
      { title: 'avg', value: (r) => fmt(r.avg) },
      { title: 'count', value: (r) => r.count },
    ]);
  }
  out += `\nendpoint: ${d.url}\n`;
  const a = d.autoscaler;
  out += `\nautoscaler (${a.policy}): avg in-flight ${fmt(a.avgInFlight)}, target ${a.target}/replica, raw ${fmt(a.raw)}, recommendation ${a.recommendation ?? '-'}\n`;
  if (a.lastDecision) out += `last decision ${formatAge(now - a.lastDecision.t)} ago: ${a.lastDecision.from} -> ${a.lastDecision.to} (${a.lastDecision.reason})\n`;
  if (a.lastTick) out += `last tick ${formatAge(now - a.lastTick.t)} ago: ${a.lastTick.reason}\n`;
  if (d.replicas.length > 0) {
    out += '\n' + renderTable(d.replicas, [
      { title: 'replica', value: (r) => r.id },
      { title: 'revision', value: (r) => r.revision },
      { title: 'state', value: (r) => r.state + (r.pendingReason ? ` (${r.pendingReason})` : '') },
      { title: 'pid', value: (r) => r.pid ?? '-' },
    ]);
  }
  if (d.lastLogLines.length > 0 && d.status === 'error') {
    const lines = d.lastLogLines.flatMap((l) => readableLogLine(l).split('\n'));
    out += `\nlast log lines:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
  }
  return out;
}

/** What the splitter renderers read of a `TrafficSplitterView` (serving/daemon/traffic-splitters.ts). */
interface SplitterRows {
  readonly name: string;
  readonly status: string;
  readonly url: string;
  readonly lastUpdated: number;
  readonly requests: number;
  readonly unauthorized: number;
  readonly apiKeysSecret?: string;
  readonly apis: ReadonlyArray<{ readonly name: string; readonly weight: number; readonly status: string; readonly ready: boolean; readonly requests: number; readonly share: number | null }>;
}

/** `myelin get`: the TrafficSplitters below the APIs, as Cortex listed them (`name:weight` per API). */
export function renderSplitterList(splitters: readonly SplitterRows[], now: number): string {
  if (splitters.length === 0) return '';
  return renderTable(splitters, [
    { title: 'traffic splitter', value: (s) => s.name },
    { title: 'status', value: (s) => s.status },
    { title: 'apis', value: (s) => s.apis.map((b) => `${b.name}:${b.weight}`).join(' ') },
    { title: 'last update', value: (s) => formatAge(now - s.lastUpdated) },
    { title: 'requests', value: (s) => s.requests || '-' },
  ]);
}

/** `myelin get <splitter>`: one row per backend with its weight and the share of requests it got. */
export function renderSplitterDetail(s: SplitterRows, now: number): string {
  let out = renderTable(s.apis, [
    { title: 'api', value: (b) => b.name },
    { title: 'weight', value: (b) => `${b.weight}%` },
    { title: 'status', value: (b) => b.status },
    { title: 'ready', value: (b) => (b.ready ? 'yes' : 'no') },
    { title: 'requests', value: (b) => b.requests },
    { title: 'share', value: (b) => (b.share === null ? '-' : `${(b.share * 100).toFixed(1)}%`) },
  ]);
  out += `
traffic splitter ${s.name}: ${s.status}, last update ${formatAge(now - s.lastUpdated)} ago
`;
  out += `endpoint: ${s.url}
`;
  if (s.apiKeysSecret !== undefined) out += `api keys: secret ${s.apiKeysSecret} (${s.unauthorized} requests refused)
`;
  return out;
}

const PINO_LEVELS: Readonly<Record<number, string>> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/**
 * A replica's log line for people: a pino JSON line (what replicas write) becomes
 * `<level> <msg>[: <err.message>]`; any other line (a Python traceback on stderr) is kept as it is.
 * E.g. `{"level":50,"msg":"predictor failed to load","err":{"message":"No module named 'x'"}}` →
 * `error predictor failed to load: No module named 'x'`.
 */
export function readableLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  let j: unknown;
  try {
    j = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof j !== 'object' || j === null) return line;
  const o = j as { level?: unknown; msg?: unknown; err?: { message?: unknown } };
  if (typeof o.msg !== 'string') return line;
  const level = typeof o.level === 'number' ? (PINO_LEVELS[o.level] ?? String(o.level)) : typeof o.level === 'string' ? o.level : 'log';
  const err = o.err && typeof o.err.message === 'string' && o.err.message !== '' ? `: ${o.err.message}` : '';
  return `${level} ${o.msg}${err}`;
}

function fmt(x: number | null | undefined): string {
  return x === null || x === undefined ? '-' : String(Number(x.toPrecision(6)));
}

/** `myelin get [api] [--watch] [-o json]`. Returns what it printed last. */
export async function get(options: GetOptions): Promise<unknown> {
  const client = daemonClient(options);
  const now = options.now ?? Date.now;
  const once = (): Promise<{ data: unknown; text: string }> =>
    withHints(async () => {
      if (options.api) {
        const d = await client.describe(options.api);
        if ('kind' in d && d.kind === 'TrafficSplitter') return { data: d, text: renderSplitterDetail(d, now()) };
        return { data: d, text: renderApiDetail(d as ApiDetail, now()) };
      }
      const { apis, splitters } = await client.list();
      const text = renderApiList(apis, now()) + (splitters.length > 0 ? `\n${renderSplitterList(splitters, now())}` : '');
      // -o json: one array, the APIs then the splitters (which carry `kind: 'TrafficSplitter'`).
      return { data: [...apis, ...splitters], text };
    });
  let last = await once();
  const print = (r: { data: unknown; text: string }): void => {
    options.stdout.write(options.output === 'json' ? `${JSON.stringify(r.data, null, 2)}\n` : r.text);
  };
  print(last);
  while (options.watch && !options.signal?.aborted) {
    await new Promise((r) => setTimeout(r, 2000));
    if (options.signal?.aborted) break;
    last = await once();
    if ((options.stdout as { isTTY?: boolean }).isTTY && options.output !== 'json') options.stdout.write('\x1b[2J\x1b[H');
    print(last);
  }
  return last.data;
}
