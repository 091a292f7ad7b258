import { createRequire } from 'node:module';
import type { Observable } from 'rxjs';
import type { Clock } from '../../../core/clock.js';
import { InvalidMessageLog, RateLimitedWarning } from '../../../core/metrics/invalid-message-log.js';
import type { MetricSample } from '../../../core/metrics/metric-sample.js';
import { explainInvalidMetricSample, isMetricSample } from '../../../core/metrics/metric-sample-validator.js';
import type { Logger } from '../../../core/ports/logger.js';
import type { MetricsTransport, TransportStats } from '../../../core/ports/metrics-transport.js';
import { IPC_METRICS_MESSAGE_TYPE, type IpcMetricsMessage } from './ipc-metrics-message.js';

/** The parent channel of a process started with IPC; `process` itself fits it in such a child. */
export interface IpcChannel {
  readonly connected?: boolean;
  send?(message: unknown, callback: (err: Error | null) => void): boolean;
}

/** Default bound on samples handed to the IPC channel and not yet written (~1 min of samples at 1/s). */
export const DEFAULT_IPC_MAX_PENDING = 64;

/**
 * The replica side of the `local` metrics transport, for a replica process the daemon started with an
 * IPC channel: `publish` validates the sample and sends `{ type: 'myelin.metrics', sample }` to the
 * parent, whose `LocalMetricsTransport.attachChild` emits it. When the channel is closed, or when
 * `maxPending` messages are already waiting to be written (the parent is not reading), the sample is
 * dropped and counted (`stats().dropped`): a replica never holds more than `maxPending` samples.
 * `published` counts samples the channel confirmed written. Nothing is received here: `samples$`
 * never emits.
 */
export class IpcMetricsTransport implements MetricsTransport {
  readonly kind = 'local';
  private readonly log: Logger;
  private readonly invalidLog: InvalidMessageLog;
  private readonly dropWarning: RateLimitedWarning;
  private pending = 0;
  private published = 0;
  private invalid = 0;
  private dropped = 0;
  private closed = false;

  constructor(
    log: Logger,
    clock: Clock,
    private readonly channel: IpcChannel = process,
    private readonly maxPending = DEFAULT_IPC_MAX_PENDING,
  ) {
    this.log = log.child({ component: 'transport/ipc-metrics' });
    this.invalidLog = new InvalidMessageLog(this.log, clock, 'metric sample');
    this.dropWarning = new RateLimitedWarning(this.log, clock, 'dropped metric samples: IPC channel unusable');
  }

  /** True when this process has an IPC channel to send samples on. */
  static available(channel: IpcChannel = process): boolean {
    return typeof channel.send === 'function';
  }

  async start(): Promise<void> {
    if (!IpcMetricsTransport.available(this.channel)) {
      this.log.warn({}, 'no IPC channel: metric samples will be dropped');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Sends over IPC, or drops and counts (closed channel, backlog full, after `close()`). Never throws. */
  publish(sample: MetricSample): void {
    if (!isMetricSample(sample)) {
      this.invalid++;
      this.invalidLog.report({ source: 'publish', reason: 'invalid', detail: explainInvalidMetricSample(sample) });
      return;
    }
    const ch = this.channel;
    if (this.closed || typeof ch.send !== 'function' || ch.connected === false) {
      this.drop('IPC channel closed');
      return;
    }
    if (this.pending >= this.maxPending) {
      this.drop(`${this.pending} samples waiting on the IPC channel`);
      return;
    }
    this.pending++;
    const message: IpcMetricsMessage = { type: IPC_METRICS_MESSAGE_TYPE, sample };
    try {
      ch.send(message, (err) => {
        this.pending--;
        if (err) this.drop(err.message);
        else this.published++;
      });
    } catch (err) {
      this.pending--;
      this.drop((err as Error).message);
    }
  }

  /**
   * Nothing arrives at a replica: never emits, never completes. rxjs is loaded here, on a call the
   * replica never makes, so a replica's start does not pay for it (~80 ms, benchmarks/replica-start.bench.ts).
   */
  samples$(): Observable<MetricSample> {
    return (createRequire(import.meta.url)('rxjs') as typeof import('rxjs')).NEVER;
  }

  stats(): TransportStats {
    return { published: this.published, received: 0, invalid: this.invalid, dropped: this.dropped };
  }

  private drop(why: string): void {
    this.dropped++;
    this.dropWarning.warn({ why, dropped: this.dropped });
  }
}
