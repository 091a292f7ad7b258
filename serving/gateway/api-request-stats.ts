/** Request counters of one API as seen by the gateway (what `myelin get` shows as 2XX/4XX/5XX and avg request). */
export interface GatewayApiStats {
  readonly api: string;
  /** Responses by status class, counted when the response finished (or the client went away after it started). */
  readonly requests: { readonly '2xx': number; readonly '3xx': number; readonly '4xx': number; readonly '5xx': number };
  /** Every response counted above. */
  readonly count: number;
  /** Sum over those responses of the time from the request's arrival to the response's end, ms. */
  readonly latencyMsSum: number;
  /** `latencyMsSum / count`, ms; null before the first response. */
  readonly avgLatencyMs: number | null;
  /** Requests the client abandoned before any response header was sent (not in `requests`). */
  readonly aborted: number;
  /** Requests being handled by the gateway for this API right now. */
  readonly inFlight: number;
  /** Of those, the ones held for a replica that can take them (an API scaled to zero, or starting from it). */
  readonly held: number;
  /** Attempts retried on another replica because the connection failed before anything was sent. */
  readonly retries: number;
  /** Replicas taking new requests now. */
  readonly readyReplicas: number;
}

/**
 * Why the gateway sent a request to a replica again (label `reason` of `myelin_gateway_retries_total`):
 * `connect_failed` — the connection to a replica failed before anything was sent, so another one is
 * tried; `keepalive_reset` — a reused keep-alive connection was reset before any response byte, so the
 * request is replayed once on a fresh connection.
 */
export const RETRY_REASONS = ['connect_failed', 'keepalive_reset'] as const;
export type RetryReason = (typeof RETRY_REASONS)[number];

/**
 * How an attempt at a replica failed (label `kind` of `myelin_gateway_upstream_errors_total`), one count
 * per failed attempt: `connect_refused` (ECONNREFUSED, or no unix socket), `connect_timeout` (not
 * connected within `connectTimeoutMs`), `connect_error` (any other failure before a byte was sent,
 * e.g. host unreachable), `keepalive_reset` (a reused connection reset before any response byte;
 * replayed), `failed` (the replica failed after the request was sent: a 502 or a truncated response),
 * `bad_response` (a response head Node refuses to forward: a 502).
 */
export const UPSTREAM_ERROR_KINDS = ['connect_refused', 'connect_timeout', 'connect_error', 'keepalive_reset', 'failed', 'bad_response'] as const;
export type UpstreamErrorKind = (typeof UPSTREAM_ERROR_KINDS)[number];

/**
 * Why the gateway itself answered 503 without reaching a replica (label `reason` of
 * `myelin_gateway_unavailable_total`): `no_ready` (no ready replica), `saturated` (every ready replica
 * at `max_replica_concurrency`), `unreachable` (no replica accepted the connection); for an API that
 * may scale to zero, `hold_timeout` (held for `hold_timeout` without a ready replica) and `hold_full`
 * (`max_held_requests` already held).
 */
export const UNAVAILABLE_REASONS = ['no_ready', 'saturated', 'unreachable', 'hold_timeout', 'hold_full'] as const;
export type UnavailableReason = (typeof UNAVAILABLE_REASONS)[number];

/** Mutable counters behind `GatewayApiStats`; one per API, updated on the event loop. */
export class ApiRequestStats {
  s2xx = 0;
  s3xx = 0;
  s4xx = 0;
  s5xx = 0;
  latencyMsSum = 0;
  aborted = 0;
  inFlight = 0;
  /** Requests in flight on direct connections, as their replicas last reported (docs/gateway.md). */
  directInFlight = 0;
  /** Requests held now for a ready replica (scale from zero); also counted in `inFlight`. */
  held = 0;
  /** Retries by reason; `retries` in the snapshot is their sum. */
  readonly retriesBy: Record<RetryReason, number> = { connect_failed: 0, keepalive_reset: 0 };
  /** Failed attempts at replicas, by kind. */
  readonly upstreamErrors: Record<UpstreamErrorKind, number> = {
    connect_refused: 0,
    connect_timeout: 0,
    connect_error: 0,
    keepalive_reset: 0,
    failed: 0,
    bad_response: 0,
  };
  /** The gateway's own 503s, by reason (also counted in `s5xx` when the response is sent). */
  readonly unavailable: Record<UnavailableReason, number> = { no_ready: 0, saturated: 0, unreachable: 0, hold_timeout: 0, hold_full: 0 };

  get retries(): number {
    return this.retriesBy.connect_failed + this.retriesBy.keepalive_reset;
  }

  /** Counts one finished request; `status` 0 means the client left before a response started. */
  record(status: number, latencyMs: number): void {
    if (status === 0) {
      this.aborted++;
      return;
    }
    if (status < 300) this.s2xx++;
    else if (status < 400) this.s3xx++;
    else if (status < 500) this.s4xx++;
    else this.s5xx++;
    this.latencyMsSum += latencyMs;
  }

  snapshot(api: string, readyReplicas: number): GatewayApiStats {
    const count = this.s2xx + this.s3xx + this.s4xx + this.s5xx;
    return {
      api,
      requests: { '2xx': this.s2xx, '3xx': this.s3xx, '4xx': this.s4xx, '5xx': this.s5xx },
      count,
      latencyMsSum: this.latencyMsSum,
      avgLatencyMs: count === 0 ? null : this.latencyMsSum / count,
      aborted: this.aborted,
      inFlight: this.inFlight + this.directInFlight,
      held: this.held,
      retries: this.retries,
      readyReplicas,
    };
  }
}
