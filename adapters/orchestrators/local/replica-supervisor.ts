import type { ChildProcess } from 'node:child_process';
import type { SchedulerLike, Subscription } from 'rxjs';
import type { ReplicaAddress } from '../../../core/ports/orchestrator-target.js';
import { probeReady } from './readiness-probe.js';
import { ReplicaProcess, type ReplicaExit, type ReplicaProcessSpawn } from './replica-process.js';

/** How one replica is probed and stopped. Durations in ms. */
export interface SupervisorSettings {
  /** Time between readiness probes. */
  readonly probeIntervalMs: number;
  /** A probe not answered within this is a failure. */
  readonly probeTimeoutMs: number;
  /** Consecutive failed probes that take a ready replica out of service. */
  readonly probeFailureThreshold: number;
  /** Between being asked to stop while ready and SIGTERM (the gateway stops routing at once). */
  readonly drainDelayMs: number;
  /** After SIGTERM, how long the process may take before SIGKILL. */
  readonly stopGracePeriodMs: number;
}

/** What a supervised replica reports, in the order it happens; `exit` comes exactly once, last. */
export interface SupervisorListener {
  line(line: string): void;
  /** The replica told its port; probing starts now. Not called once a stop was asked for. */
  listening(address: ReplicaAddress): void;
  /** The first 200 (`true`), or `probeFailureThreshold` failures in a row while ready (`false`). */
  readiness(ready: boolean): void;
  /** A `myelin.replica.event` message, unchecked. */
  event(raw: unknown): void;
  exit(exit: ReplicaExit): void;
}

/** A readiness check; `probeReady` unless a test gives another. */
export type ReadinessProbe = (address: ReplicaAddress, timeoutMs: number) => Promise<boolean>;

export type SupervisorPhase = 'starting' | 'ready' | 'terminating' | 'exited';

/**
 * One replica process from launch to exit: starts it (at construction), probes it on
 * `/healthz/ready` once it reported its port, and stops it on request (drain delay when it was
 * ready, SIGTERM, SIGKILL after the grace period). Knows nothing of APIs, revisions or rollouts: the
 * orchestrator decides what each report means. Its timers (probe interval, drain delay) run on the
 * injected rxjs scheduler, so tests can move them in virtual time; the SIGTERM → SIGKILL wait stays
 * on real time, since it waits for a real process.
 */
export class ReplicaSupervisor {
  readonly process: ReplicaProcess;
  private phaseNow: SupervisorPhase = 'starting';
  private addressNow: ReplicaAddress | undefined;
  private probing = false;
  private probeTimer: Subscription | undefined;
  private failures = 0;
  private stopping: Promise<ReplicaExit | null> | undefined;

  /** Spawns the process at once; a spawn that throws is the caller's to handle. */
  constructor(
    spawn: ReplicaProcessSpawn,
    private readonly settings: SupervisorSettings,
    private readonly scheduler: SchedulerLike,
    private readonly listener: SupervisorListener,
    private readonly probe: ReadinessProbe = probeReady,
  ) {
    this.process = new ReplicaProcess(spawn, {
      onLine: (line) => listener.line(line),
      onListening: (address) => this.onListening(address),
      onReadyHint: () => this.onReadyHint(),
      onEvent: (event) => listener.event(event),
      onExit: (exit) => this.onExit(exit),
    });
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get child(): ChildProcess {
    return this.process.child;
  }

  get phase(): SupervisorPhase {
    return this.phaseNow;
  }

  get address(): ReplicaAddress | undefined {
    return this.addressNow;
  }

  /**
   * Stops probing and ends the process; resolves with its exit, or null when it was still there
   * after SIGKILL. Later calls share the first.
   */
  stop(): Promise<ReplicaExit | null> {
    if (this.stopping) return this.stopping;
    const wasReady = this.phaseNow === 'ready';
    if (this.phaseNow !== 'exited') this.phaseNow = 'terminating';
    this.cancelProbe();
    this.stopping = (async () => {
      if (wasReady && this.settings.drainDelayMs > 0) await this.delay(this.settings.drainDelayMs);
      return this.process.stop(this.settings.stopGracePeriodMs);
    })();
    return this.stopping;
  }

  private onListening(address: ReplicaAddress): void {
    if (this.phaseNow !== 'starting' && this.phaseNow !== 'ready') return;
    this.addressNow = address;
    this.listener.listening(address);
    this.startProbing();
  }

  /**
   * The replica says its predictor is loaded: probe now instead of at the next interval (up to
   * `probeIntervalMs` sooner in service; the probe's 200 still decides). A probe in flight is left alone.
   */
  private onReadyHint(): void {
    if (this.phaseNow !== 'starting' || !this.probeTimer || !this.probeable()) return;
    this.cancelProbe();
    this.startProbing();
  }

  private onExit(exit: ReplicaExit): void {
    this.phaseNow = 'exited';
    this.cancelProbe();
    this.listener.exit(exit);
  }

  private probeable(): boolean {
    return (this.phaseNow === 'starting' || this.phaseNow === 'ready') && this.addressNow !== undefined && this.process.running;
  }

  private startProbing(): void {
    if (this.probing) return;
    this.probing = true;
    const tick = async (): Promise<void> => {
      this.probeTimer = undefined;
      if (!this.probeable()) {
        this.probing = false;
        return;
      }
      const ok = await this.probe(this.addressNow!, this.settings.probeTimeoutMs);
      if (!this.probeable()) {
        this.probing = false;
        return;
      }
      if (ok) {
        this.failures = 0;
        if (this.phaseNow === 'starting') {
          this.phaseNow = 'ready';
          this.listener.readiness(true);
        }
      } else if (this.phaseNow === 'ready' && ++this.failures >= this.settings.probeFailureThreshold) {
        this.failures = 0;
        this.phaseNow = 'starting';
        this.listener.readiness(false);
      }
      // The listener may have asked for a stop meanwhile.
      if (!this.probeable()) {
        this.probing = false;
        return;
      }
      this.probeTimer = this.scheduler.schedule(() => void tick(), this.settings.probeIntervalMs);
    };
    void tick();
  }

  private cancelProbe(): void {
    this.probeTimer?.unsubscribe();
    this.probeTimer = undefined;
    this.probing = false;
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => this.scheduler.schedule(() => resolve(), ms));
  }
}
