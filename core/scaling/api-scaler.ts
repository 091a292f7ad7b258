import { asyncScheduler, Subject, type Observable, type SchedulerLike, type Subscription } from 'rxjs';
import type { AutoscalingSpec } from '../config/api-spec.js';
import type { EngineEvent } from '../events/engine-event.js';
import type { MetricSample } from '../metrics/metric-sample.js';
import { decideScale } from '../operators/decide-scale.js';
import { scalingChanges } from '../operators/scaling-changes.js';
import { scalingEvents } from '../operators/scaling-events.js';
import { totalInFlight } from '../operators/total-in-flight.js';
import { BETWEEN_TICKS_MIN_GAP_MS, windowedLoad } from '../operators/windowed-load.js';
import type { Logger } from '../ports/logger.js';
import { INITIAL_SCALING_POLICY_STATE, isScalingPolicyState, type ScalingPolicy, type ScalingPolicyState } from '../ports/scaling-policy.js';
import { decidePoke } from './scale-from-zero.js';
import type { ScalingTick } from './scaling-tick.js';

/** Options of `scaleApi`. */
export interface ScaleApiOptions {
  readonly api: string;
  readonly spec: AutoscalingSpec;
  readonly policy: ScalingPolicy;
  /** Replica count before the first tick. */
  readonly replicas: number;
  /** Policy state from a previous run; default: a fresh start. */
  readonly state?: ScalingPolicyState;
  /** The orchestrator's view of the replica count (see `decideScale`). */
  readonly currentReplicas$?: Observable<number>;
  /** New settings with the same tick and windows (see `decideScale`). */
  readonly spec$?: Observable<AutoscalingSpec>;
  readonly scheduler?: SchedulerLike;
  /** A replica silent for more than this many sample intervals drops out (default 3). */
  readonly staleAfterIntervals?: number;
}

/**
 * The scaling pipeline of one API, assembled from the operators: samples → latest per replica
 * (silent replicas drop out) → per tick the time-weighted window means → policy → one `ScalingTick`
 * per `spec.tickMs`. `samples$` must carry only this API's samples. Cold: each subscription runs its
 * own windows and ticks from subscription time on `scheduler` (default asyncScheduler).
 */
export function scaleApi(samples$: Observable<MetricSample>, o: ScaleApiOptions): Observable<ScalingTick> {
  const scheduler = o.scheduler ?? asyncScheduler;
  const cpu = o.policy.metric === 'cpuUtilization';
  return samples$.pipe(
    totalInFlight({ staleAfterIntervals: o.staleAfterIntervals, cpu }, scheduler),
    windowedLoad(
      {
        tickMs: o.spec.tickMs,
        windowMs: o.spec.windowMs,
        panicWindowMs: o.spec.panicWindowMs,
        cpu,
        betweenTicksMinGapMs: o.policy.decidesBetweenTicks ? BETWEEN_TICKS_MIN_GAP_MS : 0,
      },
      scheduler,
    ),
    decideScale({
      api: o.api,
      spec: o.spec,
      policy: o.policy,
      initialReplicas: o.replicas,
      initialState: o.state,
      currentReplicas$: o.currentReplicas$,
      spec$: o.spec$,
    }),
  );
}

/** Options of `ApiScaler`. */
export interface ApiScalerOptions {
  readonly api: string;
  readonly spec: AutoscalingSpec;
  readonly policy: ScalingPolicy;
  /** This API's samples, e.g. `MetricsTransport.samples$(api)`. */
  readonly samples$: Observable<MetricSample>;
  /** The orchestrator's replica count at start. */
  readonly replicas: number;
  /** A persisted `state()` from a previous run; anything that is not a valid state starts fresh (logged). */
  readonly state?: unknown;
  readonly scheduler?: SchedulerLike;
  readonly staleAfterIntervals?: number;
  readonly log?: Logger;
}

/**
 * The autoscaler of one API as a long-lived object for the daemon: hot `ticks$` (every tick),
 * `decisions$` (changes only) and `events$` (`scaling.decided`, `metrics.unavailable`), a setter for
 * the orchestrator's count, `reconfigure` for new settings, and `state()` to persist (plain JSON)
 * and hand back as `options.state` after a restart, so stabilization resumes where it was.
 * If the pipeline fails (a policy throws, the sample stream errors) it logs and restarts one tick
 * later from the last state; if the sample stream completes, ticking stops.
 */
export class ApiScaler {
  private readonly ticks = new Subject<ScalingTick>();
  /** Every tick; hot, no replay. */
  readonly ticks$: Observable<ScalingTick> = this.ticks.asObservable();
  /** Ticks that change the replica count. */
  readonly decisions$: Observable<ScalingTick> = this.ticks$.pipe(scalingChanges());
  /** `scaling.decided` per change, `metrics.unavailable` once per outage (per subscriber, from when it subscribes). */
  readonly events$: Observable<EngineEvent> = this.ticks$.pipe(scalingEvents());

  readonly api: string;
  private spec: AutoscalingSpec;
  private policy: ScalingPolicy;
  private current: number;
  private policyState: ScalingPolicyState;
  private readonly replicas$ = new Subject<number>();
  private readonly specs$ = new Subject<AutoscalingSpec>();
  private readonly scheduler: SchedulerLike;
  private chain: Subscription | null = null;
  private restart: Subscription | null = null;
  private closed = false;
  private readonly log: Logger | undefined;

  constructor(private readonly o: ApiScalerOptions) {
    this.log = o.log?.child({ component: 'scaling/api-scaler', api: o.api });
    this.api = o.api;
    this.spec = o.spec;
    this.policy = o.policy;
    this.current = o.replicas;
    this.scheduler = o.scheduler ?? asyncScheduler;
    if (o.state === undefined) this.policyState = INITIAL_SCALING_POLICY_STATE;
    else if (isScalingPolicyState(o.state)) this.policyState = o.state;
    else {
      this.log?.warn('ignoring an invalid persisted autoscaler state');
      this.policyState = INITIAL_SCALING_POLICY_STATE;
    }
  }

  /** Starts ticking (first tick one `tickMs` from now). Idempotent. */
  start(): void {
    if (this.closed || this.chain !== null) return;
    const chain = scaleApi(this.o.samples$, {
      api: this.api,
      spec: this.spec,
      policy: this.policy,
      replicas: this.current,
      state: this.policyState,
      currentReplicas$: this.replicas$,
      spec$: this.specs$,
      scheduler: this.scheduler,
      staleAfterIntervals: this.o.staleAfterIntervals,
    }).subscribe({
      next: (tick) => {
        this.policyState = tick.state;
        this.current = tick.decision.desired;
        this.ticks.next(tick);
      },
      error: (err: unknown) => {
        this.log?.error({ err }, 'autoscaler pipeline failed; restarting it from the last state');
        this.chain = null;
        this.restart = this.scheduler.schedule(() => {
          this.restart = null;
          this.start();
        }, this.spec.tickMs);
      },
    });
    // A synchronous error above already cleared `chain`; keep it cleared.
    if (!chain.closed) this.chain = chain;
  }

  /** The orchestrator's view of the replica count (a redeploy clamped it, a decision was applied, …). */
  setCurrentReplicas(n: number): void {
    this.current = n;
    this.replicas$.next(n);
  }

  /**
   * A poke from the gateway: `held` requests wait there with no ready replica (e.g. scaled to zero).
   * Decides at once (`decidePoke`: ceil(held / target), without stabilization) instead of at the next
   * tick, emits that tick on `ticks$` (so `decisions$` and `events$` carry it) and returns it; null
   * when it asks for no more than the current count. The pipeline restarts from the new state (its
   * windows refill, which loses nothing: no replica was ready to measure).
   */
  poke(held: number): ScalingTick | null {
    if (this.closed) return null;
    const nowMs = this.scheduler.now();
    const r = decidePoke({ policy: this.policy.kind, spec: this.spec, current: this.current, held, state: this.policyState, nowMs });
    if (r === null) return null;
    this.policyState = r.state;
    this.current = r.decision.desired;
    if (this.chain !== null) {
      this.chain.unsubscribe();
      this.chain = null;
      this.start();
    }
    const tick: ScalingTick = {
      api: this.api,
      atMs: nowMs,
      load: { atMs: nowMs, replicasReporting: 0, totalInFlight: held, avgInFlight: held, panicAvgInFlight: null, avgCpuUtilization: null, coveredMs: 0 },
      decision: r.decision,
      state: r.state,
    };
    this.ticks.next(tick);
    return tick;
  }

  /** The replica count the next tick decides from. */
  currentReplicas(): number {
    return this.current;
  }

  /**
   * New settings, keeping the policy state. With the same policy, tick and windows they apply from the
   * next tick without touching the windows; otherwise the pipeline restarts (the windows refill).
   */
  reconfigure(spec: AutoscalingSpec, policy: ScalingPolicy = this.policy): void {
    const same =
      policy === this.policy &&
      spec.tickMs === this.spec.tickMs &&
      spec.windowMs === this.spec.windowMs &&
      spec.panicWindowMs === this.spec.panicWindowMs;
    this.spec = spec;
    this.policy = policy;
    if (same) {
      this.specs$.next(spec);
      return;
    }
    if (this.chain !== null) {
      this.chain.unsubscribe();
      this.chain = null;
      this.start();
    }
  }

  /** The policy state after the last tick: plain JSON, to persist. */
  state(): ScalingPolicyState {
    return this.policyState;
  }

  /** Stops ticking and completes the streams. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.chain?.unsubscribe();
    this.restart?.unsubscribe();
    this.chain = null;
    this.ticks.complete();
  }
}
