/**
 * Metric sample, replica → autoscaler (wire format v1, schema `config-schemas/metric-sample.schema.json`).
 * Published every `intervalMs` (default 1 s) on subject `myelin.metrics.<api>`.
 */
export interface MetricSample {
  readonly v: 1;
  readonly api: string;
  /** Replica id, unique within the API. */
  readonly replica: string;
  /** The API revision (predictor id) the replica serves. */
  readonly revision: string;
  /** Per-replica sequence number, +1 per sample; a gap means lost samples. */
  readonly seq: number;
  /** End of the interval, ms since the epoch. */
  readonly t: number;
  readonly intervalMs: number;
  /** Time-weighted mean of requests in flight (queued + running) over the interval. */
  readonly inFlight: number;
  /** Highest number in flight during the interval. */
  readonly inFlightMax: number;
  /** Fraction of the replica's CPU request used over the interval (0..n), when measured. */
  readonly cpuUtilization?: number;
  /** Responses finished during the interval, by status class. */
  readonly requests: { readonly '2xx': number; readonly '4xx': number; readonly '5xx': number };
  /** Sum of the latencies (ms) of the responses counted in `requests`. */
  readonly latencyMsSum: number;
  readonly ready: boolean;
  /** Prediction monitoring accumulated during the interval (issue #5), when `monitoring` is set. */
  readonly monitoring?: MonitoringSample;
}

/** Prediction monitoring for one interval: class counts (classification) or summary stats (regression). */
export type MonitoringSample =
  | { readonly modelType: 'classification'; readonly classes: Readonly<Record<string, number>> }
  | {
      readonly modelType: 'regression';
      readonly count: number;
      readonly min: number;
      readonly max: number;
      readonly sum: number;
    };

/** Largest encoded sample the transports accept; bigger ones are counted as invalid and dropped. */
export const MAX_METRIC_SAMPLE_BYTES = 64 * 1024;
