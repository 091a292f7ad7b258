import type { ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BehaviorSubject, Observable, Subject, asyncScheduler, concat, filter, from, map, takeUntil, type SchedulerLike, type Subscription } from 'rxjs';
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
import { REPLICA_ENV, REPLICA_EVENT_TYPES, type ReplicaLauncher } from './replica-launcher.js';
import type { ReplicaExit } from './replica-process.js';
import { ReplicaSupervisor } from './replica-supervisor.js';
import {
  apiReplicaStatus,
  describeExit,
  firstLine,
  reconcileStep,
  replicaInfo,
  rolloutState,
  type CrashLoopRule,
  type LastCrash,
  type TrackedApi,
  type TrackedReplica,
} from './replica-tracker.js';
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

/** One replica: the tracker's record plus what runs it. */
interface Rec extends TrackedReplica {
  state: ReplicaState;
  readyAt?: number;
  pendingReason?: string;
  address?: ReplicaAddress;
  pid?: number;
  stopRequested: boolean;
  exit?: ReplicaExit;
  supervisor?: ReplicaSupervisor;
  stopping?: Promise<void>;
  replaceTimer?: Subscription;
}

interface Revision {
  spec: ApiSpec;
  readonly file: string;
}

interface ApiEntry extends TrackedApi<Rec> {
  current: { revision: string; spec: ApiSpec };
  stable?: { revision: string; spec: ApiSpec };
  readonly revisions: Map<string, Revision>;
  requested: number;
  readonly replicas: Map<string, Rec>;
  readonly crashes: Map<string, CrashWindow>;
  lastCrash?: LastCrash;
  readonly logs: LineRing;
  nextN: number;
  removing: boolean;
  /** `done` / `halted` once that end of the current rollout was logged. */
  lastRolloutNote?: string;
  windowTimer?: Subscription;
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
 *
 * Parts: `ReplicaSupervisor` runs one replica (launch, probe, stop, exit), the pure functions of
 * `replica-tracker.ts` decide status, rollout progress and the next reconcile step, and
 * `SpecFileStore` keeps the spec files. The timers (crash backoff, crash-loop window, probe
 * interval, drain delay) run on the injected rxjs scheduler (`asyncScheduler` by default; a
 * virtual-time one in tests, passed as the clock too). Crashes and rollouts are told through
 * `replicas$()` (a `crashed` replica with its exit and reason) and `status()` (counts, crash loop,
 * halted rollout): the daemon derives its events from those alone, as it does for every target.
 */
export class LocalOrchestrator implements OrchestratorTarget, AsyncDisposable {
  readonly kind = 'local';
  private readonly cfg: Settings;
  private readonly log: Logger;
  private readonly apis = new Map<string, ApiEntry>();
  private readonly replicasSubject = new BehaviorSubject<readonly ReplicaInfo[]>([]);
  private readonly spawnsSubject = new Subject<SpawnedReplica>();
  private readonly liveLines = new Subject<{ readonly api: string; readonly line: string }>();
  private readonly replicaEvents = new Subject<EngineEvent>();
  private droppedEvents = 0;
  private readonly removed = new Subject<string>();
  private starting: Promise<void> | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly specs: SpecFileStore;
  private readonly rule: CrashLoopRule;

  constructor(
    config: LocalOrchestratorConfig,
    private readonly launcher: ReplicaLauncher,
    private readonly placement: ComputePlacement,
    private readonly clock: Clock,
    log: Logger,
    private readonly scheduler: SchedulerLike = asyncScheduler,
  ) {
    this.cfg = { ...DEFAULTS, runDir: join(tmpdir(), `myelin-local-${process.pid}`), ...stripUndefined(config) };
    this.log = log.child({ component: 'orchestrators/local' });
    this.specs = new SpecFileStore(this.cfg.runDir);
    this.rule = { threshold: this.cfg.crashLoopThreshold, windowMs: this.cfg.crashLoopWindowMs };
  }

  // ------------------------------------------------------------------ streams beyond the port

  /** Every replica process as it is started (hot). */
  spawns$(): Observable<SpawnedReplica> {
    return this.spawnsSubject.asObservable();
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
    a.windowTimer?.unsubscribe();
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
    return a ? apiReplicaStatus(a, this.clock.now(), this.rule) : undefined;
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

  /** Brings one API one step closer to what is wanted; safe to call at any time, any number of times. */
  private reconcile(a: ApiEntry): void {
    if (this.closed || a.removing) return;
    const now = this.clock.now();
    const step = reconcileStep(a, now, this.rule);
    for (const r of step.stop) this.stopReplica(a, r);
    for (let i = 0; i < step.startCurrent; i++) this.createReplica(a, a.current.revision);
    for (let i = 0; i < step.startStable; i++) this.createReplica(a, a.stable!.revision);
    this.placePending();
    this.trackRollout(a, step.halted);
  }

  /** Logs how a rollout ended and, once every replica runs the current revision, makes it the stable one. */
  private trackRollout(a: ApiEntry, halted: boolean): void {
    const cur = a.current.revision;
    const { done } = rolloutState(a);
    const from = a.stable?.revision;
    if (from !== undefined && from !== cur) {
      const key = done ? 'done' : halted ? 'halted' : '';
      if (key !== a.lastRolloutNote) {
        a.lastRolloutNote = key;
        if (done) this.log.info({ api: a.name, from, to: cur }, 'rollout done');
        else if (halted) this.log.warn({ api: a.name, from, to: cur }, 'rollout halted: new revision keeps crashing');
      }
    }
    if (done) {
      a.lastRolloutNote = undefined;
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
      r.supervisor = new ReplicaSupervisor(
        {
          command: launch.command,
          args: launch.args,
          // The API's own env wins over the launcher's daemon-wide one (e.g. MYELIN_PYTHON: the API's
          // requirements.txt virtualenv over the daemon's --python); MYELIN_* is reserved in user files.
          env: { ...base, ...launch.env, ...spec.predictor.env, ...contract },
          cwd: launch.cwd ?? spec.projectDir,
        },
        this.cfg,
        this.scheduler,
        {
          line: (line) => this.onLine(a, r, line),
          listening: (address) => this.onListening(r, address),
          readiness: (ready) => this.onReadiness(a, r, ready),
          event: (event) => this.onReplicaEvent(a, r, event),
          exit: (exit) => this.onExit(a, r, exit),
        },
      );
      r.pid = r.supervisor.pid;
    } catch (err) {
      // The launcher could not describe a process: as good as a replica that could not start.
      const error = err instanceof Error ? err : new Error(String(err));
      queueMicrotask(() => this.onExit(a, r, { code: null, signal: null, error }));
      return;
    }
    this.log.info({ api: a.name, replica: r.id, revision: r.revision, pid: r.pid, gpus: gpuIndexes }, 'replica started');
    this.spawnsSubject.next({ api: a.name, replica: r.id, revision: r.revision, child: r.supervisor.child });
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

  private onListening(r: Rec, address: ReplicaAddress): void {
    if (r.stopRequested || (r.state !== 'starting' && r.state !== 'ready')) return;
    r.address = address;
    this.emit();
  }

  /** The supervisor's probes took the replica into service (`true`) or out of it (`false`). */
  private onReadiness(a: ApiEntry, r: Rec, ready: boolean): void {
    if (this.closed || r.stopRequested) return;
    if (ready) {
      r.state = 'ready';
      r.readyAt = this.clock.now();
      this.log.info({ api: a.name, replica: r.id }, 'replica ready');
    } else {
      r.state = 'starting';
      r.readyAt = undefined;
      this.log.warn({ api: a.name, replica: r.id, failures: this.cfg.probeFailureThreshold }, 'replica not ready');
    }
    this.reconcile(a);
    this.emit();
  }

  /** Takes a slot away: forgets it when no process runs, else SIGTERM → SIGKILL in the background. */
  private stopReplica(a: ApiEntry, r: Rec): void {
    if (r.stopRequested) return;
    r.stopRequested = true;
    r.replaceTimer?.unsubscribe();
    const supervisor = r.supervisor;
    if (r.state === 'pending' || r.state === 'crashed' || r.state === 'stopped' || !supervisor) {
      a.replicas.delete(r.id);
      return;
    }
    r.state = 'terminating';
    this.log.info({ api: a.name, replica: r.id, pid: r.pid }, 'stopping replica');
    r.stopping = supervisor.stop().then((exit) => {
      if (exit === null) {
        this.log.error({ api: a.name, replica: r.id, pid: r.pid }, 'replica still running after SIGKILL');
        a.replicas.delete(r.id);
        this.emit();
      }
    });
  }

  private onExit(a: ApiEntry, r: Rec, exit: ReplicaExit): void {
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
    const crashLooping = crashes >= this.rule.threshold;
    this.log.warn({ api: a.name, replica: r.id, reason, crashes, restartInMs: delay, crashLooping }, 'replica crashed');
    this.apiLine(a, `[orchestrator] replica ${r.id} crashed (${firstLine(reason)}); replacing it in ${formatDuration(delay)}`);
    r.replaceTimer = this.scheduler.schedule(() => {
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
  }

  /** Re-plans when the oldest crash leaves the window, since that can end a crash loop (and a halted rollout). */
  private scheduleWindowCheck(a: ApiEntry): void {
    a.windowTimer?.unsubscribe();
    const now = this.clock.now();
    let next: number | undefined;
    for (const w of a.crashes.values()) {
      const e = w.nextExpiryMs(now);
      if (e !== undefined && (next === undefined || e < next)) next = e;
    }
    if (next === undefined) return;
    a.windowTimer = this.scheduler.schedule(
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
    for (const a of this.apis.values()) for (const r of a.replicas.values()) list.push(replicaInfo(r));
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
