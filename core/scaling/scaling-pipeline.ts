import { asyncScheduler, Observable, Subject, type SchedulerLike, type Subscriber, type Subscription } from 'rxjs';
import type { AutoscalingSpec } from '../config/api-spec.js';
import type { EngineEvent } from '../events/engine-event.js';
import type { MetricSample } from '../metrics/metric-sample.js';
import { scalingChanges } from '../operators/scaling-changes.js';
import type { Logger } from '../ports/logger.js';
import type { ScalingPolicy } from '../ports/scaling-policy.js';
import { ApiScaler } from './api-scaler.js';
import type { ScalingTick } from './scaling-tick.js';

/** One API to autoscale. */
export interface ApiScalingSetup {
  readonly api: string;
  readonly spec: AutoscalingSpec;
  readonly policy: ScalingPolicy;
  /** The orchestrator's replica count now. */
  readonly replicas: number;
  /** A persisted `ApiScaler.state()` from a previous run. */
  readonly state?: unknown;
}

/** Per API: the subscriber of its scaler's sample stream (null while not subscribed) and the scaler. */
interface Route {
  sink: Subscriber<MetricSample> | null;
  readonly scaler: ApiScaler;
}

/** Options of `ScalingPipeline`. */
export interface ScalingPipelineOptions {
  /** Samples of every API (e.g. `MetricsTransport.samples$()`). */
  readonly samples$: Observable<MetricSample>;
  readonly scheduler?: SchedulerLike;
  readonly staleAfterIntervals?: number;
  readonly log?: Logger;
}

/**
 * Autoscaling for many APIs over one sample stream: routes each sample to its API's `ApiScaler` by
 * `api` (a map lookup; samples of APIs not added are counted and dropped) and merges the outputs.
 * `ticks$`, `decisions$` and `events$` are hot. Call `start()` to subscribe to the samples.
 */
export class ScalingPipeline {
  private readonly routes = new Map<string, Route>();
  private readonly ticksOut = new Subject<ScalingTick>();
  private readonly eventsOut = new Subject<EngineEvent>();
  private readonly outputs = new Map<string, Subscription>();
  private sub: Subscription | null = null;
  private routed = 0;
  private unrouted = 0;

  /** Every tick of every API. */
  readonly ticks$: Observable<ScalingTick> = this.ticksOut.asObservable();
  /** Ticks that change a replica count. */
  readonly decisions$: Observable<ScalingTick> = this.ticks$.pipe(scalingChanges());
  /** `scaling.decided` and `metrics.unavailable` of every API. */
  readonly events$: Observable<EngineEvent> = this.eventsOut.asObservable();

  constructor(private readonly o: ScalingPipelineOptions) {}

  /** Subscribes to the samples and starts every added API. Idempotent. */
  start(): void {
    if (this.sub !== null) return;
    this.sub = this.o.samples$.subscribe({
      next: (s) => {
        const r = this.routes.get(s.api);
        if (r === undefined) {
          this.unrouted++;
          return;
        }
        this.routed++;
        r.sink?.next(s);
      },
      error: (err: unknown) => this.o.log?.error({ err }, 'metric sample stream failed'),
    });
    for (const r of this.routes.values()) r.scaler.start();
  }

  /** Adds an API, or gives an existing one new settings (keeping its state). Returns its scaler. */
  upsertApi(setup: ApiScalingSetup): ApiScaler {
    const existing = this.routes.get(setup.api);
    if (existing) {
      existing.scaler.reconfigure(setup.spec, setup.policy);
      return existing.scaler;
    }
    // A direct hand-off to the scaler's subscriber instead of a Subject per API: one call less per sample.
    const sinks: { sink: Subscriber<MetricSample> | null } = { sink: null };
    const input = new Observable<MetricSample>((subscriber) => {
      sinks.sink = subscriber;
      return () => {
        if (sinks.sink === subscriber) sinks.sink = null;
      };
    });
    const scaler = new ApiScaler({
      api: setup.api,
      spec: setup.spec,
      policy: setup.policy,
      samples$: input,
      replicas: setup.replicas,
      state: setup.state,
      scheduler: this.o.scheduler ?? asyncScheduler,
      staleAfterIntervals: this.o.staleAfterIntervals,
      log: this.o.log,
    });
    const route: Route = Object.assign(sinks, { scaler });
    this.routes.set(setup.api, route);
    const out = scaler.ticks$.subscribe((t) => this.ticksOut.next(t));
    out.add(scaler.events$.subscribe((e) => this.eventsOut.next(e)));
    this.outputs.set(setup.api, out);
    if (this.sub !== null) scaler.start();
    return scaler;
  }

  /** Stops autoscaling an API; its samples are dropped from now on. */
  removeApi(api: string): void {
    const r = this.routes.get(api);
    if (!r) return;
    this.routes.delete(api);
    r.scaler.close();
    this.outputs.get(api)?.unsubscribe();
    this.outputs.delete(api);
  }

  /** The scaler of an API, if added. */
  scaler(api: string): ApiScaler | undefined {
    return this.routes.get(api)?.scaler;
  }

  /** Samples routed to an API, and samples of APIs that were not added. */
  stats(): { readonly routed: number; readonly unrouted: number } {
    return { routed: this.routed, unrouted: this.unrouted };
  }

  /** Stops everything and completes the streams. */
  close(): void {
    this.sub?.unsubscribe();
    this.sub = null;
    for (const api of [...this.routes.keys()]) this.removeApi(api);
    this.ticksOut.complete();
    this.eventsOut.complete();
  }
}
