import { Counter, Gauge, Registry } from 'prom-client';
import { RETRY_REASONS, UNAVAILABLE_REASONS, UPSTREAM_ERROR_KINDS, type ApiRequestStats } from './api-request-stats.js';

/** One routed API as the metrics read it at scrape time. */
export interface GatewayMetricsEntry {
  readonly api: string;
  readonly stats: ApiRequestStats;
  /** Replicas taking new requests now. */
  readonly readyUpstreams: number;
}

const STATUS_CLASSES = [
  ['2xx', 's2xx'],
  ['3xx', 's3xx'],
  ['4xx', 's4xx'],
  ['5xx', 's5xx'],
] as const;

/**
 * The gateway's Prometheus series, labelled by `api` (docs/gateway.md lists them): requests by status
 * class, abandoned requests, retries by reason, failed attempts at replicas by kind, the gateway's own
 * 503s by reason, requests in flight and ready upstreams. Nothing is recorded here: every value is read
 * from the live `ApiRequestStats` of the routed APIs when scraped, so the data path pays nothing for
 * it and an API that is no longer routed has no series. Counters restart from 0 when an API is routed
 * again after removal (Prometheus' `rate()` treats that as a counter reset). Its own registry, so two
 * gateways in one process (tests) never share series; the daemon appends its text to its own `/metrics`.
 */
export class GatewayMetrics {
  private readonly registry = new Registry();

  constructor(entries: () => Iterable<GatewayMetricsEntry>) {
    const counter = (name: string, help: string, labelNames: string[], fill: (c: Counter, e: GatewayMetricsEntry) => void): void => {
      new Counter({
        name,
        help,
        labelNames,
        registers: [this.registry],
        collect() {
          this.reset();
          for (const e of entries()) fill(this, e);
        },
      });
    };
    const gauge = (name: string, help: string, value: (e: GatewayMetricsEntry) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['api'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const e of entries()) this.set({ api: e.api }, value(e));
        },
      });
    };
    counter('myelin_gateway_requests_total', 'Requests the gateway answered, by status class (2xx, 3xx, 4xx, 5xx), its own 503s included', ['api', 'code'], (c, e) => {
      for (const [code, field] of STATUS_CLASSES) c.inc({ api: e.api, code }, e.stats[field]);
    });
    counter('myelin_gateway_requests_aborted_total', 'Requests the client abandoned before any response header was sent', ['api'], (c, e) => {
      c.inc({ api: e.api }, e.stats.aborted);
    });
    counter('myelin_gateway_retries_total', 'Requests sent to a replica again: connect_failed (another replica), keepalive_reset (replayed on a fresh connection)', ['api', 'reason'], (c, e) => {
      for (const reason of RETRY_REASONS) c.inc({ api: e.api, reason }, e.stats.retriesBy[reason]);
    });
    counter('myelin_gateway_upstream_errors_total', 'Failed attempts at replicas, by kind (connect_refused, connect_timeout, connect_error, keepalive_reset, failed, bad_response)', ['api', 'kind'], (c, e) => {
      for (const kind of UPSTREAM_ERROR_KINDS) c.inc({ api: e.api, kind }, e.stats.upstreamErrors[kind]);
    });
    counter('myelin_gateway_unavailable_total', "The gateway's own 503s, by reason (no_ready, saturated, unreachable, hold_timeout, hold_full)", ['api', 'reason'], (c, e) => {
      for (const reason of UNAVAILABLE_REASONS) c.inc({ api: e.api, reason }, e.stats.unavailable[reason]);
    });
    gauge('myelin_gateway_in_flight_requests', 'Requests being handled by the gateway now', (e) => e.stats.inFlight + e.stats.directInFlight);
    gauge('myelin_gateway_ready_upstreams', 'Replicas taking new requests from the gateway now', (e) => e.readyUpstreams);
    gauge('myelin_gateway_held_requests', 'Requests held for a ready replica now (min_replicas 0: scale from zero)', (e) => e.stats.held);
  }

  /** The Prometheus text exposition (format 0.0.4), ending in a newline. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
