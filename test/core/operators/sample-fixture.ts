import type { MetricSample } from '../../../core/metrics/metric-sample.js';

/** A metric sample with sensible defaults (1 s interval); only the fields a test cares about vary. */
export function sample(replica: string, inFlight: number, o: Partial<MetricSample> = {}): MetricSample {
  return {
    v: 1,
    api: 'iris',
    replica,
    revision: 'r1',
    seq: 0,
    t: 0,
    intervalMs: 1000,
    inFlight,
    inFlightMax: Math.ceil(inFlight),
    requests: { '2xx': 0, '4xx': 0, '5xx': 0 },
    latencyMsSum: 0,
    ready: true,
    ...o,
  };
}
