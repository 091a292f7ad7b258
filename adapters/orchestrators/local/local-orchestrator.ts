import type { ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BehaviorSubject, Observable, Subject, concat, filter, from, map, takeUntil } from 'rxjs';
import type { ApiSpec } from '../../../core/config/api-spec.js';
import { formatDuration } from '../../../core/config/quantities.js';
import type { Clock } from '../../../core/clock.js';
import { OrchestratorError } from '../../../core/errors.js';
import type { EngineEvent } from '../../../core/events/engine-event.js';
import { checkOutgoingEvent } from '../../../core/events/event-validator.js';
import type { ComputePlacement } from '../../../core/ports/compute-placement.js';
import type {
  ApiDeployment,
  ApiReplicaStatus,
  OrchestratorTarget,
  ReplicaAddress,
  ReplicaInfo,
  ReplicaState,
} from '../../../core/ports/orchestrator-target.js';
import { CrashWindow, backoffDelayMs } from './crash-backoff.js';
import { LineRing } from './line-ring.js';
import { probeReady } from './readiness-probe.js';
import { REPLICA_ENV, REPLICA_EVENT_TYPES, type ReplicaLauncher } from './replica-launcher.js';
import { ReplicaProcess, type ReplicaExit } from './replica-process.js';
import { planRollout, resolveUpdateBudget } from './rollout-plan.js';
import { SpecFileStore } from './spec-file-store.js';

/** Settings of the local orchestrator; every field has a default. Durations in ms. */
export interface LocalOrchestratorConfig {
  /** Folder for the spec files handed to replicas; default `<tmpdir>/myelin-local-<pid>`. */
  readonly runDir?: string;
  /** First replacement delay after a crash; doubles per crash in the window. Default 1000. */
  readonly backoffBaseMs?: number;
  /** Longest replacement delay. Default 30000. */
  readonly backoffMaxMs?: number;
  /** This many crashes of one revision within `crashLoopWindowMs` make it crash-looping. Default 3. */
  readonly crashLoopThreshold?: number;
  /** Default 300000 (5 min). */
  readonly crashLoopWindowMs?: number;
  /** Time between readiness probes of one replica. Default 500. */
  readonly probeIntervalMs?: number;
  /** A probe not answered within this is a failure. Default 1000. */
  readonly probeTimeoutMs?: number;
  /** Consecutive failed probes that take a ready replica out of service. Default 3. */
  readonly probeFailureThreshold?: number;
  /**
   * Time between taking a ready replica out of service (state `terminating`, which the gateway
   * stops routing to at once) and SIGTERM. Default 0.
   */
  readonly drainDelayMs?: number;
  /** After SIGTERM, how long a replica may take to exit before SIGKILL. Default 30000. */
  readonly stopGracePeriodMs?: number;
  /** Output lines kept per replica. Default 200. */
  readonly logLinesPerReplica?: number;
  /** Output lines kept per API for `logs$`. Default 2000. */
  readonly logLinesPerApi?: number;
  /** Lines of a crashed replica shown in `status().lastLogLines`. Default 20. */
  readonly lastLogLines?: number;
  /** Start replicas with this process's environment underneath (PATH, HOME, …). Default true. */
  readonly inheritEnv?: boolean;
  /**
   * The machine's model cache, passed to every replica as `MYELIN_MODEL_CACHE` (a contract variable:
   * nothing in the spec or the launcher overrides it). Default: not set (replicas use their default).
   */
  readonly modelCacheDir?: string;
}

type Settings = Required<Omit<LocalOrchestratorConfig, 'modelCacheDir'>> & Pick<LocalOrchestratorConfig, 'modelCacheDir'>;

const DEFAULTS: Omit<Settings, 'runDir' | 'modelCacheDir'> = {
  backoffBaseMs: 1000,
  backoffMaxMs: 30_000,
  crashLoopThreshold: 3,
  crashLoopWindowMs: 300_000,
  probeIntervalMs: 500,
  probeTimeoutMs: 1000,
  probeFailureThreshold: 3,
  drainDelayMs: 0,
  stopGracePeriodMs: 30_000,
  logLinesPerReplica: 200,
  logLinesPerApi: 2000,
  lastLogLines: 20,
  inheritEnv: true,
};

/** A replica process just started; the daemon attaches its IPC channel to the metrics transport. */
export interface SpawnedReplica {
  readonly api: string;
  readonly replica: string;
  readonly revision: string;
  readonly child: ChildProcess;
}

/** A replica exited without being asked to (the daemon turns this into `replica.crashed`). */
export interface ReplicaCrash {
  readonly api: string;
  readonly replica: string;
  readonly revision: string;
  /** ms since the epoch. */
  readonly t: number;
  readonly exitCode: number | null;
  readonly signal: string | null;
  /** e.g. `exit code 1`, `killed by SIGKILL`, `could not start: spawn … ENOENT`, `predictor failed to start: <message>`. */
  readonly reason: string;
  /** When the replacement starts, ms from `t`. */
  readonly restartInMs: number;
  /** Crashes of this revision in the crash-loop window, this one included. */
  readonly crashesInWindow: number;
  readonly crashLooping: boolean;
  readonly lastLogLines: readonly string[];
}

/** A rolling update moved (the daemon maps this to `rollout.progress`). */
export interface RolloutProgress {
  readonly api: string;
  /** The revision being rolled out. */
  readonly revision: string;
  /** The revision that served before (fully rolled out earlier). */
  readonly fromRevision: string;
  readonly t: number;
  /** Ready replicas of `revision`. */
  readonly updated: number;
  /** Ready replicas of older revisions. */
  readonly stale: number;
  readonly requested: number;
  /** Every replica runs `revision` and `requested` of them are ready. */
  readonly done: boolean;
  /** The new revision crash-loops: nothing old is stopped and the old revision is kept at `requested`. */
  readonly halted: boolean;
  readonly message?: string;
}

interface Rec {
  readonly id: string;
  readonly api: string;
  readonly revision: string;
  /** Creation order within the API (the `<n>` of the id). */
  readonly n: number;
  readonly createdAt: number;
  state: ReplicaState;
  readyAt?: number;
  pendingReason?: string;
  address?: ReplicaAddress;
  proc?: ReplicaProcess;
  readonly lines: LineRing;
  stopRequested: boolean;
  stopping?: Promise<void>;
  probing: boolean;
  probeTimer?: NodeJS.Timeout;
  probeFailures: number;
  replaceTimer?: NodeJS.Timeout;
  exit?: ReplicaExit;
}

interface Revision {
  spec: ApiSpec;
  readonly file: string;
}

interface ApiEntry {
  readonly name: string;
  current: { revision: string; spec: ApiSpec };
  /** The last revision that was fully rolled out (every replica on it, `requested` ready). */
  stable?: { revision: string; spec: ApiSpec };
  readonly revisions: Map<string, Revision>;
  requested: number;
  /** In creation order. */
  readonly replicas: Map<string, Rec>;
  readonly crashes: Map<string, CrashWindow>;
  lastCrash?: { readonly revision: string; readonly t: number; readonly lines: readonly string[]; readonly reason: string };
  readonly logs: LineRing;
  nextN: number;
  removing: boolean;
  lastProgressKey?: string;
  windowTimer?: NodeJS.Timeout;
}

const isSlot = (r: Rec): boolean =>
  !r.stopRequested && (r.state === 'pending' || r.state === 'starting' || r.state === 'ready' || r.state === 'crashed');

/** Which slot to give up first: ones that do not serve, then the newest ready ones. */
const STOP_ORDER: Readonly<Record<ReplicaState, number>> = { crashed: 0, pending: 1, starting: 2, ready: 3, terminating: 9, stopped: 9 };

/**
 * Why a replica ended, for status messages and `crashes$()`: `predictor failed to start: <what the
 * replica said>` (may be several lines, e.g. the end of a Python traceback), `could not start: …`,
 * `killed by SIGKILL` or `exit code 1`.
 */
function describeExit(e: ReplicaExit): string {
  if (e.error) return `could not start: ${e.error.message}`;
  if (e.failure) return `predictor failed to start: ${e.failure}`;
  if (e.signal) return `killed by ${e.signal}`;
  return `exit code ${e.code}`;
}

/** Lines of a replica's last output carried by a crash reason whose exit says nothing more. */
const CRASH_REASON_LINES = 5;
const CRASH_REASON_MAX_CHARS = 2048;

/**
 * `describeExit`, and for a bare exit code or signal the replica's last output lines too, bounded so
 * that the `replica.crashed` event carrying it stays small.
 */
function crashReasonOf(e: ReplicaExit, lastLines: readonly string[]): string {
  const reason = describeExit(e);
  const text = e.failure || e.error || lastLines.length === 0 ? reason : `${reason}; last output:\n${lastLines.join('\n')}`;
  return text.length > CRASH_REASON_MAX_CHARS ? `${text.slice(0, CRASH_REASON_MAX_CHARS)}…` : text;
}

/** The first line of a reason, marked `…` when there is more (for one-line log notes). */
function firstLine(reason: string): string {
  const nl = reason.indexOf('\n');
  return nl < 0 ? reason : `${reason.slice(0, nl)} …`;
}

/**
 * `<head> (<counts>, last: <reason>)<tail>` for a one-line reason; a multi-line one (a traceback)
 * goes last, after `last crash:`, so the counts stay on the first line.
 */
function crashMessage(head: string, counts: string, reason: string, tail = ''): string {
  return reason.includes('\n') ? `${head} (${counts})${tail}; last crash: ${reason}` : `${head} (${counts}, last: ${reason})${tail}`;
}

/**
 * The `local` OrchestratorTarget: each replica is a child process on this machine, started through
 * the bound `ReplicaLauncher` with an IPC channel (contract in replica-launcher.ts).
 *
 * Lifecycle: `pending` (no room: compute reserved against `ComputePlacement`) → `starting` (process
 * up; probed on GET /healthz/ready once it reported its port) → `ready` (probe answered 200; back to
 * `starting` after `probeFailureThreshold` failed probes) → `terminating` (SIGTERM, SIGKILL after the
 * grace period) → `stopped` (then forgotten). A replica that exits on its own is `crashed` and is
 * replaced after `backoffBaseMs · 2^(n−1)` (capped), n = crashes of its revision in the window; at
 * `crashLoopThreshold` the revision is crash-looping. A new revision is rolled out with Kubernetes
 * RollingUpdate rules (see `planRollout`); one that crash-loops stops the rollout and the previous
 * revision keeps serving.
 *
 * Every change is re-planned synchronously on Node's event loop; only PIDs this class spawned are
 * ever signalled.
 */
export class LocalOrchestrator implements OrchestratorTarget, AsyncDisposable {
  readonly kind = 'local';
  private readonly cfg: Settings;
  private readonly log: Logger;
  private readonly apis = new Map<string, ApiEntry>();
  private readonly replicasSubject = new BehaviorSubject<readonly ReplicaInfo[]>([]);
  private readonly spawnsSubject = new Subject<SpawnedReplica>();
  private readonly crashesSubject = new Subject<ReplicaCrash>();
  private readonly rolloutsSubject = new Subject<RolloutProgress>();
  private readonly liveLines = new Subject<{ readonly api: string; readonly line: string }>();
  private readonly replicaEvents = new Subject<EngineEvent>();
  private droppedEvents = 0;
  private readonly removed = new Subject<string>();
  private starting: Promise<void> | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly specs: SpecFileStore;

  constructor(
    config: LocalOrchestratorConfig,
    private readonly launcher: ReplicaLauncher,
    private readonly placement: ComputePlacement,
    private readonly clock: Clock,
    log: Logger,
  ) {
    this.cfg = { ...DEFAULTS, runDir: join(tmpdir(), `myelin-local-${process.pid}`), ...stripUndefined(config) };
    this.log = log.child({ component: 'orchestrators/local' });
    this.specs = new SpecFileStore(this.cfg.runDir);
  }

  // ------------------------------------------------------------------ streams beyond the port

  /** Every replica process as it is started (hot). */
  spawns$(): Observable<SpawnedReplica> {
    return this.spawnsSubject.asObservable();
  }

  /** Every unexpected exit (hot). */
  crashes$(): Observable<ReplicaCrash> {
    return this.crashesSubject.asObservable();
  }

  /** Rolling-update progress: each change of the counts while a new revision replaces an old one (hot). */
  rollouts$(): Observable<RolloutProgress> {
    return this.rolloutsSubject.asObservable();
  }

  /**
   * What replicas report over IPC (`model.download`, `model.version`), checked against the event
   * schema and size limit, with `api` and `replica` set to the sender's (hot). See `droppedReplicaEvents`.
   */
  events$(): Observable<EngineEvent> {
    return this.replicaEvents.asObservable();
  }

  /** Replica event messages dropped so far: not an allowed type, or invalid once attributed. */
  get droppedReplicaEvents(): number {
    return this.droppedEvents;
  }

  // ------------------------------------------------------------------ OrchestratorTarget

  /** Finds the machine's capacity and creates the run folder; later calls share the first. */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new OrchestratorError('the local orchestrator is closed'));
    this.starting ??= (async () => {
      await this.placement.start();
      // Spec files hold the APIs' env values (secrets): the folder is the daemon user's alone.
      await this.specs.prepare();
    })();
    return this.starting;
  }

  async apply(d: ApiDeployment): Promise<void> {
    await this.start();
    this.assertOpen();
    if (!Number.isInteger(d.replicas) || d.replicas < 0) {
      throw new OrchestratorError(`replicas of ${d.spec.name} must be an integer >= 0 (got ${d.replicas})`);
    }
    const name = d.spec.name;
    const file = await this.specs.write(name, d.revision, d.spec);
    this.assertOpen();
    let a = this.apis.get(name);
    if (a?.removing) throw new OrchestratorError(`api ${name} is being removed`);
    if (!a) {
      a = {
        name,
        current: { revision: d.revision, spec: d.spec },
        revisions: new Map(),
        requested: d.replicas,
        replicas: new Map(),
        crashes: new Map(),
        logs: new LineRing(this.cfg.logLinesPerApi),
        nextN: 0,
        removing: false,
      };
      this.apis.set(name, a);
    }
    const known = a.revisions.get(d.revision);
    if (known) known.spec = d.spec;
    else a.revisions.set(d.revision, { spec: d.spec, file });
    if (a.current.revision !== d.revision) {
      this.log.info({ api: name, from: a.current.revision, to: d.revision, replicas: d.replicas }, 'new revision');
    }
    a.current = { revision: d.revision, spec: d.spec };
    if (a.stable?.revision === d.revision) a.stable = { revision: d.revision, spec: d.spec };
    a.requested = d.replicas;
    this.reconcile(a);
    this.emit();
  }

  async scale(api: string, replicas: number): Promise<void> {
    this.assertOpen();
    const a = this.apis.get(api);
    if (!a || a.removing) throw new OrchestratorError(`api ${api} is not deployed`);
    if (!Number.isInteger(replicas) || replicas < 0) throw new OrchestratorError(`replicas of ${api} must be an integer >= 0 (got ${replicas})`);
    a.requested = replicas;
    this.reconcile(a);
    this.emit();
  }

  async remove(api: string): Promise<void> {
    const a = this.apis.get(api);
    if (!a) return;
    a.removing = true;
    clearTimeout(a.windowTimer);
    for (const r of [...a.replicas.values()]) this.stopReplica(a, r);
    this.emit();
    await Promise.all([...a.replicas.values()].map((r) => r.stopping));
    if (this.apis.get(api) === a) this.apis.delete(api);
    this.removed.next(api);
    await this.specs.removeApi(api);
    this.log.info({ api }, 'api removed');
    this.emit();
  }

  /** Compute no replica of `spec` can ever get on this machine (compared with its whole capacity, not what is free). */
  impossibleCompute(spec: ApiSpec): Array<{ readonly field: string; readonly message: string }> {
    const request = { cpuMillis: spec.compute.cpuMillis, memBytes: spec.compute.memBytes ?? 0, gpu: spec.compute.gpu, inf: spec.compute.inf };
    try {
      return (this.placement.impossible?.(request) ?? []).map((p) => ({ field: `compute.${p.field}`, message: p.message }));
    } catch {
      return []; // not started yet: placement decides when it places
    }
  }

  status(api: string): ApiReplicaStatus | undefined {
    const a = this.apis.get(api);
    if (!a) return undefined;
    const now = this.clock.now();
    const cur = a.current.revision;
    let upToDate = 0;
    let stale = 0;
    let pending = 0;
    let starting = 0;
    let pendingReason: string | undefined;
    for (const r of a.replicas.values()) {
      if (r.state === 'ready') {
        if (r.revision === cur) upToDate++;
        else stale++;
      } else if (r.revision === cur && !r.stopRequested) {
        if (r.state === 'pending') {
          pending++;
          pendingReason ??= r.pendingReason;
        } else if (r.state === 'starting') starting++;
      }
    }
    const failed = a.crashes.get(cur)?.count(now) ?? 0;
    const crashLooping = failed >= this.cfg.crashLoopThreshold;
    const recentCrash = a.lastCrash && a.lastCrash.revision === cur && failed > 0 ? a.lastCrash : undefined;
    const halted = this.isHalted(a, now);
    const window = formatDuration(this.cfg.crashLoopWindowMs);
    let message: string | undefined;
    const counts = `${failed} crashes in ${window}`;
    const reason = recentCrash?.reason ?? 'unknown';
    if (halted) {
      message = crashMessage(`revision ${cur} keeps crashing`, counts, reason, `; rollout stopped, revision ${a.stable!.revision} still serving (${stale} ready)`);
    } else if (crashLooping) {
      message = crashMessage('replicas keep crashing', counts, reason);
    } else if (pendingReason) {
      message = pendingReason;
    }
    return {
      api,
      revision: cur,
      requested: a.requested,
      upToDate,
      stale,
      pending,
      starting,
      failed,
      crashLooping,
      computeUnavailable: pendingReason !== undefined,
      lastLogLines: recentCrash?.lines ?? [],
      ...(message ? { message } : {}),
    };
  }

  replicas$(): Observable<readonly ReplicaInfo[]> {
    return this.replicasSubject.asObservable();
  }

  /**
   * The API's recent output lines, each prefixed `[<replica id>] `, plus lines from the orchestrator
   * itself prefixed `[orchestrator] `; then, when `follow`, live lines until the API is removed or
   * the orchestrator closes. Without `follow` it completes after the recent lines.
   */
  logs$(api: string, options: { readonly follow: boolean; readonly tail?: number }): Observable<string> {
    return new Observable<string>((subscriber) => {
      const backlog = from(this.apis.get(api)?.logs.lines(options.tail) ?? []);
      const source = options.follow
        ? concat(
            backlog,
            this.liveLines.pipe(
              filter((l) => l.api === api),
              map((l) => l.line),
              takeUntil(this.removed.pipe(filter((name) => name === api))),
            ),
          )
        : backlog;
      return source.subscribe(subscriber);
    });
  }

  /** Stops every replica (SIGTERM, SIGKILL after the grace period), waits for them, then completes every stream. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await Promise.all([...this.apis.keys()].map((name) => this.remove(name)));
      await this.specs.close();
      this.replicasSubject.complete();
      this.spawnsSubject.complete();
      this.crashesSubject.complete();
      this.rolloutsSubject.complete();
      this.liveLines.complete();
      this.replicaEvents.complete();
      this.removed.complete();
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ------------------------------------------------------------------ planning

  private assertOpen(): void {
    if (this.closed) throw new OrchestratorError('the local orchestrator is closed');
  }

  private isHalted(a: ApiEntry, now: number): boolean {
    if (!a.stable || a.stable.revision === a.current.revision) return false;
    return (a.crashes.get(a.current.revision)?.count(now) ?? 0) >= this.cfg.crashLoopThreshold;
  }

  /** Brings one API one step closer to what is wanted; safe to call at any time, any number of times. */
  private reconcile(a: ApiEntry): void {
    if (this.closed || a.removing) return;
    const now = this.clock.now();
    const cur = a.current.revision;
    const slots = [...a.replicas.values()].filter(isSlot);
    const curSlots = slots.filter((r) => r.revision === cur);
    const oldSlots = slots.filter((r) => r.revision !== cur);
    const halted = this.isHalted(a, now);
    const budget = resolveUpdateBudget(a.current.spec.updateStrategy, a.requested);
    const plan = planRollout({
      requested: a.requested,
      budget,
      current: { slots: curSlots.length, ready: curSlots.filter((r) => r.state === 'ready').length },
      old: { slots: oldSlots.length, ready: oldSlots.filter((r) => r.state === 'ready').length },
      halted,
    });

    // Newest first within a state: the youngest replicas have served least.
    const byStopOrder = (x: Rec, y: Rec): number => STOP_ORDER[x.state] - STOP_ORDER[y.state] || y.n - x.n;
    for (const r of [...curSlots].sort(byStopOrder).slice(0, plan.stopCurrent)) this.stopReplica(a, r);
    for (const r of oldSlots.filter((x) => x.state !== 'ready').slice(0, plan.stopOldNotReady)) this.stopReplica(a, r);
    // Old ready replicas of revisions that never fully rolled out go before the stable revision's.
    const stableRev = a.stable?.revision;
    const oldReady = oldSlots
      .filter((x) => x.state === 'ready')
      .sort((x, y) => Number(x.revision === stableRev) - Number(y.revision === stableRev) || y.n - x.n);
    for (const r of oldReady.slice(0, plan.stopOldReady)) this.stopReplica(a, r);
    for (let i = 0; i < plan.startCurrent; i++) this.createReplica(a, cur);
    if (plan.startOld > 0 && a.stable) {
      for (let i = 0; i < plan.startOld; i++) this.createReplica(a, a.stable.revision);
    }
    this.placePending();
    this.trackRollout(a, now, halted);
  }

  /** Records rollout progress and, once every replica runs the current revision, makes it the stable one. */
  private trackRollout(a: ApiEntry, now: number, halted: boolean): void {
    const cur = a.current.revision;
    let updated = 0;
    let stale = 0;
    let oldAlive = 0;
    let curSlots = 0;
    for (const r of a.replicas.values()) {
      if (r.revision !== cur) {
        if (r.state !== 'stopped') oldAlive++;
        if (r.state === 'ready') stale++;
      } else {
        if (r.state === 'ready') updated++;
        if (isSlot(r)) curSlots++;
      }
    }
    const done = oldAlive === 0 && updated >= a.requested && curSlots === a.requested;
    const from = a.stable?.revision;
    if (from !== undefined && from !== cur) {
      const key = `${cur}|${updated}|${stale}|${a.requested}|${done}|${halted}`;
      if (key !== a.lastProgressKey) {
        a.lastProgressKey = key;
        const message = halted ? this.status(a.name)?.message : undefined;
        this.rolloutsSubject.next({
          api: a.name,
          revision: cur,
          fromRevision: from,
          t: now,
          updated,
          stale,
          requested: a.requested,
          done,
          halted,
          ...(message ? { message } : {}),
        });
        if (done) this.log.info({ api: a.name, from, to: cur }, 'rollout done');
        else if (halted) this.log.warn({ api: a.name, from, to: cur }, 'rollout halted: new revision keeps crashing');
      }
    }
    if (done) {
      a.stable = { revision: cur, spec: a.current.spec };
      for (const rev of [...a.revisions.keys()]) {
        if (rev !== cur) {
          void this.specs.removeFile(a.revisions.get(rev)!.file);
          a.revisions.delete(rev);
          a.crashes.delete(rev);
        }
      }
    }
  }

  private createReplica(a: ApiEntry, revision: string): void {
    const n = a.nextN++;
    const id = `${a.name}-${revision.slice(0, 8)}-${n}`;
    a.replicas.set(id, {
      id,
      api: a.name,
      revision,
      n,
      createdAt: this.clock.now(),
      state: 'pending',
      lines: new LineRing(this.cfg.logLinesPerReplica),
      stopRequested: false,
      probing: false,
      probeFailures: 0,
    });
  }

  /** Places every pending replica that fits now, oldest first; one that does not fit keeps its reason. */
  private placePending(): void {
    if (this.closed) return;
    const pending: { a: ApiEntry; r: Rec }[] = [];
    for (const a of this.apis.values()) {
      if (a.removing) continue;
      for (const r of a.replicas.values()) if (r.state === 'pending' && !r.stopRequested) pending.push({ a, r });
    }
    pending.sort((x, y) => x.r.createdAt - y.r.createdAt || (x.a === y.a ? x.r.n - y.r.n : 0));
    for (const { a, r } of pending) {
      const spec = a.revisions.get(r.revision)!.spec;
      const placed = this.placement.reserve(r.id, {
        cpuMillis: spec.compute.cpuMillis,
        memBytes: spec.compute.memBytes ?? 0,
        gpu: spec.compute.gpu,
        inf: spec.compute.inf,
      });
      if (!placed.ok) {
        if (r.pendingReason !== placed.reason) this.log.warn({ api: a.name, replica: r.id, reason: placed.reason }, 'replica pending');
        r.pendingReason = placed.reason;
        continue;
      }
      r.pendingReason = undefined;
      this.launch(a, r, placed.gpuIndexes);
    }
  }

  // ------------------------------------------------------------------ processes

  private launch(a: ApiEntry, r: Rec, gpuIndexes: readonly number[]): void {
    const rev = a.revisions.get(r.revision)!;
    const spec = rev.spec;
    const contract: Record<string, string> = {
      [REPLICA_ENV.api]: a.name,
      [REPLICA_ENV.revision]: r.revision,
      [REPLICA_ENV.replicaId]: r.id,
      [REPLICA_ENV.specFile]: rev.file,
      [REPLICA_ENV.host]: '127.0.0.1',
      [REPLICA_ENV.port]: '0',
      [REPLICA_ENV.cpuMillis]: String(spec.compute.cpuMillis),
      ...(spec.compute.memBytes !== null ? { [REPLICA_ENV.memBytes]: String(spec.compute.memBytes) } : {}),
      [REPLICA_ENV.cudaVisibleDevices]: gpuIndexes.join(','),
      ...(this.cfg.modelCacheDir !== undefined ? { [REPLICA_ENV.modelCache]: this.cfg.modelCacheDir } : {}),
    };
    r.state = 'starting';
    try {
      const launch = this.launcher.launch({ spec, revision: r.revision, replicaId: r.id, specFile: rev.file, env: contract });
      const base = this.cfg.inheritEnv ? envOf(process.env) : {};
      r.proc = new ReplicaProcess(
        {
          command: launch.command,
          args: launch.args,
          // The API's own env wins over the launcher's daemon-wide one (e.g. MYELIN_PYTHON: the API's
          // requirements.txt virtualenv over the daemon's --python); MYELIN_* is reserved in user files.
          env: { ...base, ...launch.env, ...spec.predictor.env, ...contract },
          cwd: launch.cwd ?? spec.projectDir,
        },
        {
          onLine: (line) => this.onLine(a, r, line),
          onListening: (address) => this.onListening(a, r, address),
          onEvent: (event) => this.onReplicaEvent(a, r, event),
          onExit: (exit) => this.onExit(a, r, exit),
        },
      );
    } catch (err) {
      // The launcher could not describe a process: as good as a replica that could not start.
      const error = err instanceof Error ? err : new Error(String(err));
      queueMicrotask(() => this.onExit(a, r, { code: null, signal: null, error }));
      return;
    }
    this.log.info({ api: a.name, replica: r.id, revision: r.revision, pid: r.proc.pid, gpus: gpuIndexes }, 'replica started');
    this.spawnsSubject.next({ api: a.name, replica: r.id, revision: r.revision, child: r.proc.child });
  }

  private onLine(a: ApiEntry, r: Rec, line: string): void {
    r.lines.push(line);
    this.apiLine(a, `[${r.id}] ${line}`);
  }

  private apiLine(a: ApiEntry, line: string): void {
    a.logs.push(line);
    this.liveLines.next({ api: a.name, line });
  }

  /**
   * A replica's own event: only the allowed types, attributed to the sender whatever it claimed (a
   * replica cannot speak for another API or replica), then checked like every outgoing event.
   */
  private onReplicaEvent(a: ApiEntry, r: Rec, raw: unknown): void {
    const type = typeof raw === 'object' && raw !== null ? (raw as { type?: unknown }).type : undefined;
    let why: string;
    if (typeof type !== 'string' || !REPLICA_EVENT_TYPES.includes(type)) {
      why = `type ${JSON.stringify(type ?? null)} is not one a replica reports (${REPLICA_EVENT_TYPES.join(', ')})`;
    } else {
      const event = { ...(raw as Record<string, unknown>), api: a.name, replica: r.id };
      why = checkOutgoingEvent(event);
      if (why === '') {
        this.replicaEvents.next(event as unknown as EngineEvent);
        return;
      }
    }
    this.droppedEvents++;
    // Counted always, logged for the first few and then every hundredth, so a chatty replica cannot flood the log.
    if (this.droppedEvents <= 10 || this.droppedEvents % 100 === 0) {
      this.log.warn({ api: a.name, replica: r.id, why, dropped: this.droppedEvents }, 'invalid replica event dropped');
    }
  }

  private onListening(a: ApiEntry, r: Rec, address: ReplicaAddress): void {
    if (r.stopRequested || (r.state !== 'starting' && r.state !== 'ready')) return;
    r.address = address;
    this.emit();
    this.probeLoop(a, r);
  }

  private probeable(r: Rec): boolean {
    return !this.closed && !r.stopRequested && (r.state === 'starting' || r.state === 'ready') && r.address !== undefined && !!r.proc?.running;
  }

  private probeLoop(a: ApiEntry, r: Rec): void {
    if (r.probing) return;
    r.probing = true;
    const tick = async (): Promise<void> => {
      r.probeTimer = undefined;
      if (!this.probeable(r)) {
        r.probing = false;
        return;
      }
      const ok = await probeReady(r.address!, this.cfg.probeTimeoutMs);
      if (!this.probeable(r)) {
        r.probing = false;
        return;
      }
      if (ok) {
        r.probeFailures = 0;
        if (r.state === 'starting') {
          r.state = 'ready';
          r.readyAt = this.clock.now();
          this.log.info({ api: a.name, replica: r.id }, 'replica ready');
          this.reconcile(a);
          this.emit();
        }
      } else if (r.state === 'ready' && ++r.probeFailures >= this.cfg.probeFailureThreshold) {
        r.probeFailures = 0;
        r.state = 'starting';
        r.readyAt = undefined;
        this.log.warn({ api: a.name, replica: r.id, failures: this.cfg.probeFailureThreshold }, 'replica not ready');
        this.reconcile(a);
        this.emit();
      }
      r.probeTimer = setTimeout(() => void tick(), this.cfg.probeIntervalMs);
    };
    void tick();
  }

  /** Takes a slot away: forgets it when no process runs, else SIGTERM → SIGKILL in the background. */
  private stopReplica(a: ApiEntry, r: Rec): void {
    if (r.stopRequested) return;
    r.stopRequested = true;
    clearTimeout(r.probeTimer);
    clearTimeout(r.replaceTimer);
    if (r.state === 'pending' || r.state === 'crashed' || r.state === 'stopped' || !r.proc) {
      a.replicas.delete(r.id);
      return;
    }
    const wasReady = r.state === 'ready';
    r.state = 'terminating';
    const proc = r.proc;
    this.log.info({ api: a.name, replica: r.id, pid: proc.pid }, 'stopping replica');
    r.stopping = (async () => {
      if (wasReady && this.cfg.drainDelayMs > 0) await new Promise((res) => setTimeout(res, this.cfg.drainDelayMs));
      const exit = await proc.stop(this.cfg.stopGracePeriodMs);
      if (exit === null) {
        this.log.error({ api: a.name, replica: r.id, pid: proc.pid }, 'replica still running after SIGKILL');
        a.replicas.delete(r.id);
        this.emit();
      }
    })();
  }

  private onExit(a: ApiEntry, r: Rec, exit: ReplicaExit): void {
    clearTimeout(r.probeTimer);
    this.placement.release(r.id);
    r.exit = exit;
    if (r.stopRequested || this.closed || a.removing) {
      r.state = 'stopped';
      this.log.info({ api: a.name, replica: r.id, code: exit.code, signal: exit.signal }, 'replica stopped');
      this.emit();
      a.replicas.delete(r.id);
    } else {
      this.onCrash(a, r, exit);
    }
    for (const other of this.apis.values()) this.reconcile(other);
    this.emit();
  }

  private onCrash(a: ApiEntry, r: Rec, exit: ReplicaExit): void {
    const now = this.clock.now();
    let window = a.crashes.get(r.revision);
    if (!window) a.crashes.set(r.revision, (window = new CrashWindow(this.cfg.crashLoopWindowMs)));
    window.record(now);
    const crashes = window.count(now);
    const delay = backoffDelayMs(crashes, this.cfg.backoffBaseMs, this.cfg.backoffMaxMs);
    const reason = describeExit(exit);
    const lastLogLines = r.lines.lines(this.cfg.lastLogLines);
    r.state = 'crashed';
    a.lastCrash = { revision: r.revision, t: now, lines: lastLogLines, reason };
    const crashLooping = crashes >= this.cfg.crashLoopThreshold;
    this.log.warn({ api: a.name, replica: r.id, reason, crashes, restartInMs: delay, crashLooping }, 'replica crashed');
    this.apiLine(a, `[orchestrator] replica ${r.id} crashed (${firstLine(reason)}); replacing it in ${formatDuration(delay)}`);
    r.replaceTimer = setTimeout(() => {
      r.replaceTimer = undefined;
      if (a.replicas.get(r.id) !== r) return;
      a.replicas.delete(r.id);
      // Replaced one for one (a halted rollout starts nothing new, but keeps retrying its crashed
      // replicas as Kubernetes restarts a crash-looping pod); the plan then trims any excess.
      if (r.revision === a.current.revision && !a.removing && !this.closed) this.createReplica(a, r.revision);
      this.reconcile(a);
      this.emit();
    }, delay);
    this.scheduleWindowCheck(a);
    this.emit();
    this.crashesSubject.next({
      api: a.name,
      replica: r.id,
      revision: r.revision,
      t: now,
      exitCode: exit.code,
      signal: exit.signal,
      reason,
      restartInMs: delay,
      crashesInWindow: crashes,
      crashLooping,
      lastLogLines,
    });
  }

  /** Re-plans when the oldest crash leaves the window, since that can end a crash loop (and a halted rollout). */
  private scheduleWindowCheck(a: ApiEntry): void {
    clearTimeout(a.windowTimer);
    const now = this.clock.now();
    let next: number | undefined;
    for (const w of a.crashes.values()) {
      const e = w.nextExpiryMs(now);
      if (e !== undefined && (next === undefined || e < next)) next = e;
    }
    if (next === undefined) return;
    a.windowTimer = setTimeout(
      () => {
        if (this.closed || a.removing) return;
        this.reconcile(a);
        this.emit();
        this.scheduleWindowCheck(a);
      },
      Math.max(0, next - now) + 1,
    );
  }

  // ------------------------------------------------------------------ plumbing

  private emit(): void {
    if (this.replicasSubject.closed) return;
    const list: ReplicaInfo[] = [];
    for (const a of this.apis.values()) {
      for (const r of a.replicas.values()) {
        list.push({
          id: r.id,
          api: r.api,
          revision: r.revision,
          state: r.state,
          createdAt: r.createdAt,
          ...(r.address && (r.state === 'starting' || r.state === 'ready' || r.state === 'terminating') ? { address: r.address } : {}),
          ...(r.proc?.pid !== undefined ? { pid: r.proc.pid } : {}),
          ...(r.readyAt !== undefined ? { readyAt: r.readyAt } : {}),
          ...(r.pendingReason !== undefined ? { pendingReason: r.pendingReason } : {}),
          ...(r.exit && r.state === 'crashed' ? { exitCode: r.exit.code, signal: r.exit.signal, crashReason: crashReasonOf(r.exit, r.lines.lines(CRASH_REASON_LINES)) } : {}),
        });
      }
    }
    this.replicasSubject.next(list);
  }
}

function envOf(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
