import type { Logger } from 'pino';
import { map, type Observable } from 'rxjs';
import type { ApiSpec } from '../../core/config/api-spec.js';
import type { ScalingPolicyRegistry } from '../../core/contribution/scaling-policy-registry.js';
import type { MetricsTransport } from '../../core/ports/metrics-transport.js';
import { ApiScaler } from '../../core/scaling/api-scaler.js';
import type { ApiAutoscaler, AutoscalerFactory, AutoscalerTickView } from './api-autoscaler.js';

/** The daemon's autoscalers: one core `ApiScaler` per API, fed by the metrics transport. */
export class ScalerAutoscalers implements AutoscalerFactory {
  constructor(
    private readonly metrics: MetricsTransport,
    private readonly policies: ScalingPolicyRegistry,
    private readonly log: Logger,
  ) {}

  create(spec: ApiSpec, options: { readonly replicas: number; readonly restoredState?: unknown }): ApiAutoscaler {
    const scaler = new ApiScaler({
      api: spec.name,
      spec: spec.autoscaling,
      policy: this.policies.get(spec.autoscaling.policy),
      samples$: this.metrics.samples$(spec.name),
      replicas: options.replicas,
      state: options.restoredState,
      log: this.log,
    });
    const ticks$: Observable<AutoscalerTickView> = scaler.ticks$.pipe(
      map((tick) => ({
        t: tick.atMs,
        policy: tick.decision.policy,
        metricsAvailable: tick.decision.valid,
        avgInFlight: tick.decision.avg,
        raw: tick.decision.raw,
        recommendation: tick.decision.recommendation,
        from: tick.decision.current,
        to: tick.decision.desired,
        panic: tick.decision.panic?.active ?? false,
        reason: tick.decision.reason,
      })),
    );
    scaler.start();
    const policies = this.policies;
    return {
      ticks$,
      setReplicas: (n) => scaler.setCurrentReplicas(n),
      poke: (held) => void scaler.poke(held),
      reconfigure: (next) => scaler.reconfigure(next.autoscaling, policies.get(next.autoscaling.policy)),
      state: () => scaler.state(),
      close: () => scaler.close(),
    };
  }
}
