import type { Observable } from 'rxjs';
import type { ApiSpec } from '../../core/config/api-spec.js';

/** One autoscaler tick as the daemon shows it (`myelin get <api>`, Prometheus gauges). */
export interface AutoscalerTickView {
  readonly t: number;
  readonly policy: string;
  /** False when no fresh samples arrived: the count is held (`metrics.unavailable`). */
  readonly metricsAvailable: boolean;
  readonly avgInFlight: number | null;
  readonly raw: number | null;
  readonly recommendation: number | null;
  /** Replica count before and after this tick's decision. */
  readonly from: number;
  readonly to: number;
  readonly panic: boolean;
  readonly reason: string;
}

/**
 * The daemon's handle on one API's autoscaler (core scaling pipeline + policy). `ticks$` emits every
 * tick; a tick with `to !== from` is a decision the daemon applies to the orchestrator.
 */
export interface ApiAutoscaler {
  readonly ticks$: Observable<AutoscalerTickView>;
  /** The orchestrator's view of the replica count (decisions move it; a redeploy may clamp it). */
  setReplicas(n: number): void;
  /**
   * The gateway holds `held` requests with no ready replica (scale from zero): decide now instead of
   * at the next tick; a rise comes out on `ticks$` like any decision. Optional for test doubles.
   */
  poke?(held: number): void;
  /** New autoscaling settings without a restart of the history. */
  reconfigure(spec: ApiSpec): void;
  /** Plain-JSON policy state to persist, handed back to `create` after a daemon restart. */
  state(): unknown;
  close(): void;
}

/** Creates autoscalers; implemented on top of core/scaling by the daemon's wiring. */
export interface AutoscalerFactory {
  create(spec: ApiSpec, options: { readonly replicas: number; readonly restoredState?: unknown }): ApiAutoscaler;
}
