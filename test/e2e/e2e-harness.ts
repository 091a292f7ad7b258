import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defer, filter, firstValueFrom, type Observable, timeout } from 'rxjs';
import type { ConfigProblem } from '../../core/errors.js';
import type { EngineEvent } from '../../core/events/engine-event.js';
import { MyelinClient } from '../../serving/client/myelin-client.js';
import type { ApiDetail, ApiSummary, DeployResponse } from '../../serving/daemon/daemon-service.js';
import { runCli, startDaemonProcess, type CliResult, type DaemonProcess } from '../harness/daemon-process.js';

/** A user-like project (no package.json): a TypeScript predictor that waits `delay_ms`, then answers with its pid. */
export async function writeSlowProject(dir: string, yaml: string): Promise<void> {
  await writeFile(
    join(dir, 'predictor.ts'),
    `import { HttpError, type PredictArgs, type PredictorContext } from 'myelin';
export class Predictor {
  private readonly delayMs: number;
  private readonly version: string;
  constructor({ config }: PredictorContext) {
    this.delayMs = Number(config.delay_ms ?? 0);
    this.version = String(config.version ?? 'v1');
  }
  async predict({ payload }: PredictArgs) {
    if (payload === 'bad') throw new HttpError(400, 'bad payload');
    await new Promise((r) => setTimeout(r, this.delayMs));
    return { pid: process.pid, version: this.version };
  }
}
`,
  );
  await writeFile(join(dir, 'myelin.yaml'), yaml);
}

/** A `myelin` command that exited non-zero: its exit code, output and `-o json` failure document. */
export class CliFailure extends Error {
  /** `errors` of the failure document (`{ file, line, col, field, message }` for configuration problems). */
  readonly problems: readonly ConfigProblem[];
  constructor(
    readonly args: readonly string[],
    readonly result: CliResult,
    readonly json: { errors?: ConfigProblem[] } | undefined,
  ) {
    super(`myelin ${args.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
    this.problems = json?.errors ?? [];
  }
}

/** A real daemon (`myelin up` as a child process), driven over its control API, its gateway and the CLI. */
export interface E2eDaemon {
  readonly process: DaemonProcess;
  /** The typed HTTP client the CLI uses (token from the state folder). */
  readonly client: MyelinClient;
  readonly controlUrl: string;
  readonly gatewayUrl: string;
  readonly token: string;
  readonly dir: string;
  readonly stateDir: string;
  readonly logFile: string;
  /**
   * The shape the in-process harness had (`running.controlUrl`, `running.daemon.get(...)`), answered
   * over the control API, for callers outside this suite (test/serving/cli/daemon-commands.test.ts,
   * benchmarks/scale-reaction.bench.ts).
   */
  readonly running: {
    readonly controlUrl: string;
    readonly gatewayUrl: string;
    readonly token: string;
    readonly daemon: {
      get(api: string): Promise<ApiDetail>;
      list(): Promise<readonly ApiSummary[]>;
      events$(scope?: { readonly api?: string; readonly sinceMs?: number }): Observable<EngineEvent>;
    };
  };
  /** `node bin/myelin.mjs <args> --url <control> --state-dir <state>`; resolves with any exit code. */
  cli(args: readonly string[], options?: { readonly cwd?: string; readonly timeoutMs?: number }): Promise<CliResult>;
  /** `myelin deploy <project>/myelin.yaml -f --no-wait -o json`; a non-zero exit rejects with a `CliFailure`. */
  deploy(yaml: string): Promise<DeployResponse>;
  get(api: string): Promise<ApiDetail>;
  list(): Promise<readonly ApiSummary[]>;
  delete(api: string): Promise<void>;
  url(api: string): Promise<string>;
  /** Retained events newer than `sinceMs` (`GET /v1/events?follow=false`). */
  recentEvents(scope: { readonly api?: string; readonly sinceMs: number }): Promise<readonly EngineEvent[]>;
  /** Events over HTTP (`GET /v1/events`, server-sent events), replayed from `sinceMs` (default: when subscribed). */
  events$(scope?: { readonly api?: string; readonly sinceMs?: number }): Observable<EngineEvent>;
  /** Stops the daemon (SIGTERM, bounded wait, then SIGKILL) and resolves with how it exited; the folders stay. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  close(): Promise<void>;
}

/** Timeouts of `myelin up --headers-timeout/--request-timeout`, in ms. */
export interface E2eDaemonTimeouts {
  readonly headersTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
}

export async function startE2eDaemon(
  options: { readonly nats?: string; readonly stateDir?: string; readonly dir?: string; readonly daemon?: E2eDaemonTimeouts } = {},
): Promise<E2eDaemon> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'myelin-e2e-')));
  const stateDir = options.stateDir ?? join(dir, 'state');
  const stamp = `${Date.now()}`;
  const logFile = join(dir, `daemon-${stamp}.log`);
  // The local orchestrator keeps its defaults (backoff 1 s, probes every 500 ms): `up` has no flags for them.
  const proc = await startDaemonProcess({
    stateDir,
    logFile,
    outFile: join(dir, `daemon-${stamp}.out`),
    args: [
      ...(options.nats ? ['--nats', options.nats] : []),
      ...(options.daemon?.headersTimeoutMs !== undefined ? ['--headers-timeout', `${options.daemon.headersTimeoutMs}ms`] : []),
      ...(options.daemon?.requestTimeoutMs !== undefined ? ['--request-timeout', options.daemon.requestTimeoutMs === 0 ? '0' : `${options.daemon.requestTimeoutMs}ms`] : []),
    ],
  });
  const client = new MyelinClient({ url: proc.controlUrl, stateDir });
  const project = join(dir, 'project');
  const cli = (args: readonly string[], o: { readonly cwd?: string; readonly timeoutMs?: number } = {}): Promise<CliResult> =>
    runCli([...args, '--url', proc.controlUrl, '--state-dir', stateDir], { cwd: o.cwd ?? dir, timeoutMs: o.timeoutMs });
  let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  // Replicas drain for up to the orchestrator's default grace period (30 s) before their SIGKILL.
  const stop = (): Promise<{ code: number | null; signal: NodeJS.Signals | null }> => (stopping ??= proc.stop(60_000));
  const get = (api: string): Promise<ApiDetail> => client.get(api);
  const list = (): Promise<readonly ApiSummary[]> => client.get();
  return {
    process: proc,
    client,
    controlUrl: proc.controlUrl,
    gatewayUrl: proc.gatewayUrl,
    token: proc.token,
    dir,
    stateDir,
    logFile,
    running: { controlUrl: proc.controlUrl, gatewayUrl: proc.gatewayUrl, token: proc.token, daemon: { get, list, events$: (f) => httpEvents$(client, f) } },
    cli,
    async deploy(yaml: string) {
      await mkdir(project, { recursive: true });
      await writeSlowProject(project, yaml);
      const args = ['deploy', join(project, 'myelin.yaml'), '--force', '--no-wait', '-o', 'json'];
      const r = await cli(args, { cwd: project });
      let json: unknown;
      try {
        json = JSON.parse(r.stdout);
      } catch {
        json = undefined;
      }
      if (r.code !== 0) throw new CliFailure(args, r, json as { errors?: ConfigProblem[] } | undefined);
      if (json === undefined) throw new Error(`myelin deploy -o json printed no JSON: ${r.stdout}\n${r.stderr}`);
      return json as DeployResponse;
    },
    get,
    list,
    async delete(api) {
      await client.delete(api);
    },
    async url(api: string) {
      return (await get(api)).url;
    },
    async recentEvents(scope) {
      return client.eventHistory({ since: scope.sinceMs, api: scope.api });
    },
    events$: (f) => httpEvents$(client, f),
    stop,
    async close() {
      await stop();
    },
  };
}

/**
 * The daemon's events as the client reads them, not reconnecting: each subscription opens its own
 * request (aborted on unsubscribe). `sinceMs` defaults to the time of subscribing, so nothing is missed
 * while the request connects. Errors when the request fails; completes when the stream ends.
 */
export function httpEvents$(client: MyelinClient, scope: { readonly api?: string; readonly sinceMs?: number } = {}): Observable<EngineEvent> {
  return defer(() => client.events$({ api: scope.api, since: scope.sinceMs ?? Date.now(), reconnect: false }));
}

/** The first event matching `pred` (from now on, or replayed from `sinceMs`), within `ms`. */
export function nextEvent(events$: Observable<EngineEvent>, pred: (e: EngineEvent) => boolean, ms: number): Promise<EngineEvent> {
  return firstValueFrom(events$.pipe(filter(pred), timeout(ms)));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Polls `check` every 100 ms until it returns a value other than undefined/false, or throws after `ms`. */
export async function waitFor<T>(what: string, ms: number, check: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface LoadResult {
  ok: number;
  failed: number;
  statuses: Map<number | string, number>;
  pids: Set<number>;
  versions: Set<string>;
}

/**
 * Closed-loop load: `clients` loops each POSTing to `url` until `stop()` (or `maxMs`), bounded by
 * `maxRequests` in total. Only loopback URLs are accepted.
 */
export function startLoad(url: string, clients: number, options: { maxMs: number; maxRequests?: number }) {
  if (!/^http:\/\/127\.0\.0\.1:/.test(url)) throw new Error(`load only targets 127.0.0.1 (got ${url})`);
  const result: LoadResult = { ok: 0, failed: 0, statuses: new Map(), pids: new Set(), versions: new Set() };
  let stopped = false;
  const deadline = Date.now() + options.maxMs;
  const max = options.maxRequests ?? 100_000;
  let sent = 0;
  const loops = Array.from({ length: clients }, async () => {
    while (!stopped && Date.now() < deadline && sent < max) {
      sent++;
      try {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":1}' });
        const body = await res.text();
        result.statuses.set(res.status, (result.statuses.get(res.status) ?? 0) + 1);
        if (res.status === 200) {
          result.ok++;
          const j = JSON.parse(body) as { pid: number; version: string };
          result.pids.add(j.pid);
          result.versions.add(j.version);
        } else result.failed++;
      } catch (err) {
        result.failed++;
        const key = (err as { cause?: { code?: string } }).cause?.code ?? 'error';
        result.statuses.set(key, (result.statuses.get(key) ?? 0) + 1);
      }
    }
  });
  return {
    result,
    async stop(): Promise<LoadResult> {
      stopped = true;
      await Promise.all(loops);
      return result;
    },
  };
}
