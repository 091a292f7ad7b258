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

/**
 * CPU used over an interval as a fraction of the CPU request: 100 ms of CPU in 1 s with 200m requested
 * ⇒ 0.5. `undefined` (the sample carries no `cpuUtilization`) when there is nothing to measure against:
 * no CPU request (`compute.cpu: null` reserves none, so only the cpu policy, which the loader refuses
 * without one, would need it), an empty interval, or readings that are not finite. Never NaN, never
 * Infinity, never negative: the metric sample schema rejects those, and with them the whole sample.
 */
export function cpuUtilization(usedMicros: number, intervalMs: number, cpuMillis: number): number | undefined {
  if (!(cpuMillis > 0) || !(intervalMs > 0) || !Number.isFinite(cpuMillis) || !Number.isFinite(intervalMs)) return undefined;
  if (!Number.isFinite(usedMicros)) return undefined;
  const u = usedMicros / 1000 / intervalMs / (cpuMillis / 1000);
  if (!Number.isFinite(u)) return undefined;
  return u > 0 ? u : 0;
}
