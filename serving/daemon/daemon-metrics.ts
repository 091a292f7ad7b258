import { Counter, Gauge, Registry } from 'prom-client';
import type { MetricSample } from '../../core/metrics/metric-sample.js';
import type { ApiReplicaStatus } from '../../core/ports/orchestrator-target.js';
import type { AutoscalerTickView } from './api-autoscaler.js';

const CODES = ['2xx', '4xx', '5xx'] as const;

/**
 * The daemon's Prometheus series (`GET /metrics` of the control API), labelled by `api`: responses by
 * status class (a counter, so `rate()` works across replica restarts), replica counts, requests in
 * flight, and the autoscaler's gauges named as Knative's. Its own registry, so two daemons in one
 * process (tests) never share series. Single-threaded; reads no clock.
 */
export class DaemonMetrics {
  private readonly registry = new Registry();
  /** Registered first: the exposition lists the series in registration order. */
  private readonly responses = new Counter({
    name: 'myelin_api_responses_total',
    help: 'Responses by status class (2xx, 4xx, 5xx), as reported by the replicas',
    labelNames: ['api', 'code'],
    registers: [this.registry],
  });
  private readonly gauges = {
    desired: this.gauge('myelin_api_desired_replicas', 'Replicas the autoscaler asks for'),
    ready: this.gauge('myelin_api_ready_replicas', 'Ready replicas of the current revision'),
    stale: this.gauge('myelin_api_stale_replicas', 'Ready replicas of older revisions'),
    inFlight: this.gauge('myelin_api_in_flight_requests', 'Requests in flight over all replicas (latest samples)'),
    // Named like Knative's autoscaler metrics.
    desiredPods: this.gauge('autoscaler_desired_pods', 'Number of pods the autoscaler wants'),
    actualPods: this.gauge('autoscaler_actual_pods', 'Number of pods that are ready'),
    stableConcurrency: this.gauge('autoscaler_stable_request_concurrency', 'Average requests in flight over the stable window'),
    targetConcurrency: this.gauge('autoscaler_target_concurrency_per_pod', 'Target requests in flight per pod'),
    panicMode: this.gauge('autoscaler_panic_mode', '1 while the burst policy is panicking, else 0'),
  };
  /** Latest `inFlight` of each replica, by API; the gauge is their sum, taken at scrape time. */
  private readonly inFlight = new Map<string, Map<string, number>>();

  private gauge(name: string, help: string): Gauge {
    return new Gauge({ name, help, labelNames: ['api'], registers: [this.registry] });
  }

  /** Starts an API's in-flight gauge (0 until a sample arrives); forgets what an earlier API of that name had. */
  addApi(api: string): void {
    this.inFlight.set(api, new Map());
  }

  /** Removes every series of the API. */
  removeApi(api: string): void {
    this.inFlight.delete(api);
    for (const g of Object.values(this.gauges)) g.remove({ api });
    for (const code of CODES) this.responses.remove({ api, code });
  }

  /** Counts a sample's responses and keeps its replica's in-flight. Ignored for an API not added. */
  recordSample(s: MetricSample): void {
    const replicas = this.inFlight.get(s.api);
    if (!replicas) return;
    for (const code of CODES) if (s.requests[code] > 0) this.responses.inc({ api: s.api, code }, s.requests[code]);
    replicas.set(s.replica, s.inFlight);
  }

  /** A replica left the orchestrator's list: it no longer counts in flight. */
  forgetReplica(api: string, replica: string): void {
    this.inFlight.get(api)?.delete(replica);
  }

  /** One autoscaler tick; `targetConcurrency` is the spec's target in flight per replica. */
  recordTick(api: string, tick: AutoscalerTickView, targetConcurrency: number): void {
    this.gauges.desiredPods.set({ api }, tick.to);
    this.gauges.panicMode.set({ api }, tick.panic ? 1 : 0);
    if (tick.avgInFlight !== null) this.gauges.stableConcurrency.set({ api }, tick.avgInFlight);
    this.gauges.targetConcurrency.set({ api }, targetConcurrency);
  }

  /** The replicas asked for and what the orchestrator reports (`status` undefined counts as none ready). */
  recordReplicas(api: string, requested: number, status: ApiReplicaStatus | undefined): void {
    const upToDate = status?.upToDate ?? 0;
    const stale = status?.stale ?? 0;
    this.gauges.desired.set({ api }, requested);
    this.gauges.ready.set({ api }, upToDate);
    this.gauges.stale.set({ api }, stale);
    this.gauges.actualPods.set({ api }, upToDate + stale);
  }

  /** The Prometheus text exposition (format 0.0.4). */
  async text(): Promise<string> {
    for (const [api, replicas] of this.inFlight) {
      let total = 0;
      for (const v of replicas.values()) total += v;
      this.gauges.inFlight.set({ api }, total);
    }
    return this.registry.metrics();
  }
}
