import type { MetricSample } from '../../../core/metrics/metric-sample.js';

/**
 * One metric sample on a replica's IPC channel to the daemon. Its own module (no rxjs) because the
 * replica's `IpcMetricsTransport` sends it and must not load what only the daemon's side needs.
 */
export interface IpcMetricsMessage {
  readonly type: 'myelin.metrics';
  readonly sample: MetricSample;
}
export const IPC_METRICS_MESSAGE_TYPE = 'myelin.metrics';
