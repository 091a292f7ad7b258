/**
 * A stand-in replica process for the IPC tests: forked with an IPC channel, it publishes samples through
 * the real `IpcMetricsTransport` when the parent asks, and reports its transport's stats.
 * Messages from the parent: { cmd: 'publish', api, from, to } | { cmd: 'raw', message } | { cmd: 'stats' } | { cmd: 'exit' }.
 */
import { pino } from 'pino';
import { ManualClock } from '../../../../core/clock.js';
import type { MetricSample } from '../../../../core/metrics/metric-sample.js';
import { IpcMetricsTransport } from '../../../../adapters/transport/local/ipc-metrics-transport.js';

const transport = new IpcMetricsTransport(pino({ level: 'silent' }), new ManualClock(0));
await transport.start();

function sample(api: string, seq: number): MetricSample {
  return { v: 1, api, replica: `${api}-child`, revision: 'r1', seq, t: seq * 1000, intervalMs: 1000, inFlight: 1, inFlightMax: 2, requests: { '2xx': 1, '4xx': 0, '5xx': 0 }, latencyMsSum: 3, ready: true };
}

process.on('message', (m: { cmd: string; api?: string; from?: number; to?: number; message?: unknown }) => {
  switch (m.cmd) {
    case 'publish':
      for (let seq = m.from ?? 1; seq <= (m.to ?? 1); seq++) transport.publish(sample(m.api ?? 'iris', seq));
      break;
    case 'raw':
      process.send?.(m.message);
      break;
    case 'stats':
      process.send?.({ type: 'stats', stats: transport.stats() });
      break;
    case 'exit':
      process.disconnect();
      break;
  }
});
process.send?.({ type: 'ready' });
