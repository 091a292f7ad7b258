import type { MetricSample, MonitoringSample } from '../../core/metrics/metric-sample.js';
import type { InFlightWindow } from './in-flight-window.js';

/** Who the samples are about. */
export interface SampleIdentity {
  readonly api: string;
  readonly replica: string;
  readonly revision: string;
}

/**
 * Builds the replica's metric samples (wire format v1): responses by status class and their latency
 * sum since the last sample, plus the in-flight window's mean and max. Pure bookkeeping: the caller
 * passes the time and the readings in (SG 2.3), and publishes what `take` returns.
 */
export class ReplicaSampler {
  private seq = 0;
  private r2xx = 0;
  private r4xx = 0;
  private r5xx = 0;
  private latencyMsSum = 0;

  constructor(private readonly id: SampleIdentity) {}

  /**
   * One finished response. Statuses below 400 count as 2xx (the wire format has no 1xx/3xx class),
   * 400–499 as 4xx, 500 and up as 5xx. `latencyMs` is from the request's arrival to its answer.
   */
  recordResponse(status: number, latencyMs: number): void {
    if (status >= 500) this.r5xx++;
    else if (status >= 400) this.r4xx++;
    else this.r2xx++;
    this.latencyMsSum += latencyMs;
  }

  /**
   * Closes the interval at `nowMs` and returns its sample. `cpuUtilization` is the fraction of the
   * replica's CPU request used over the interval (CPU ms used / (interval ms × cores requested)).
   */
  take(
    nowMs: number,
    window: InFlightWindow,
    readings: { readonly ready: boolean; readonly cpuUtilization?: number; readonly monitoring?: MonitoringSample },
  ): MetricSample {
    const w = window.cut(nowMs);
    const sample: MetricSample = {
      v: 1,
      api: this.id.api,
      replica: this.id.replica,
      revision: this.id.revision,
      seq: ++this.seq,
      t: nowMs,
      intervalMs: w.intervalMs,
      inFlight: w.mean,
      inFlightMax: w.max,
      ...(readings.cpuUtilization !== undefined ? { cpuUtilization: readings.cpuUtilization } : {}),
      requests: { '2xx': this.r2xx, '4xx': this.r4xx, '5xx': this.r5xx },
      latencyMsSum: this.latencyMsSum,
      ready: readings.ready,
      ...(readings.monitoring ? { monitoring: readings.monitoring } : {}),
    };
    this.r2xx = this.r4xx = this.r5xx = 0;
    this.latencyMsSum = 0;
    return sample;
  }
}
