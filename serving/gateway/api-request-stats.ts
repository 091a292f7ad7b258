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
  /** Attempts retried on another replica because the connection failed before anything was sent. */
  readonly retries: number;
  /** Replicas taking new requests now. */
  readonly readyReplicas: number;
}

/** Mutable counters behind `GatewayApiStats`; one per API, updated on the event loop. */
export class ApiRequestStats {
  s2xx = 0;
  s3xx = 0;
  s4xx = 0;
  s5xx = 0;
  latencyMsSum = 0;
  aborted = 0;
  inFlight = 0;
  retries = 0;

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
      inFlight: this.inFlight,
      retries: this.retries,
      readyReplicas,
    };
  }
}
