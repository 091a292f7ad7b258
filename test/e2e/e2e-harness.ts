import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { firstValueFrom, filter, timeout, type Observable } from 'rxjs';
import type { EngineEvent } from '../../core/events/engine-event.js';
import { packProject } from '../../serving/daemon/project-bundle.js';
import { runDaemon, type DaemonOptions, type RunningDaemon } from '../../serving/daemon/run-daemon.js';

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

export interface E2eDaemon {
  readonly running: RunningDaemon;
  readonly dir: string;
  readonly stateDir: string;
  readonly logFile: string;
  deploy(yaml: string): Promise<void>;
  url(api: string): Promise<string>;
  close(): Promise<void>;
}

export async function startE2eDaemon(
  options: { readonly nats?: string; readonly stateDir?: string; readonly dir?: string; readonly daemon?: Partial<Pick<DaemonOptions, 'headersTimeoutMs' | 'requestTimeoutMs'>> } = {},
): Promise<E2eDaemon> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'myelin-e2e-')));
  const stateDir = options.stateDir ?? join(dir, 'state');
  const logFile = join(dir, `daemon-${Date.now()}.log`);
  const log: Logger = pino({ level: 'info' }, pino.destination({ dest: logFile, sync: true }));
  const running = await runDaemon({
    stateDir,
    target: 'local',
    nats: options.nats,
    host: '127.0.0.1',
    port: 0,
    gatewayHost: '127.0.0.1',
    gatewayPort: 0,
    log,
    local: { backoffBaseMs: 200, backoffMaxMs: 2000, stopGracePeriodMs: 10_000, probeIntervalMs: 200 },
    ...options.daemon,
  });
  const project = join(dir, 'project');
  return {
    running,
    dir,
    stateDir,
    logFile,
    async deploy(yaml: string) {
      await import('node:fs/promises').then((fs) => fs.mkdir(project, { recursive: true }));
      await writeSlowProject(project, yaml);
      await running.daemon.deploy(await packProject(project, 'myelin.yaml'), { force: true });
    },
    async url(api: string) {
      return (await running.daemon.get(api)).url;
    },
    async close() {
      await running.stop();
    },
  };
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

/** The first event matching `pred` (from now on, or replayed from `sinceMs`), within `ms`. */
export function nextEvent(events$: Observable<EngineEvent>, pred: (e: EngineEvent) => boolean, ms: number): Promise<EngineEvent> {
  return firstValueFrom(events$.pipe(filter(pred), timeout(ms)));
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
