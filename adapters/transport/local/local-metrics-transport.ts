import { EMPTY, Observable, Subject } from 'rxjs';
import type { Clock } from '../../../core/clock.js';
import { InvalidMessageLog } from '../../../core/metrics/invalid-message-log.js';
import { MAX_METRIC_SAMPLE_BYTES, type MetricSample } from '../../../core/metrics/metric-sample.js';
import { explainInvalidMetricSample, isMetricSample } from '../../../core/metrics/metric-sample-validator.js';
import type { Logger } from '../../../core/ports/logger.js';
import type { ChildMetricsSink, IpcMessageSource, MetricsTransport, TransportStats } from '../../../core/ports/metrics-transport.js';

/** The IPC message a local replica sends its samples in (see `IpcMetricsTransport`). */
import { IPC_METRICS_MESSAGE_TYPE } from './ipc-metrics-message.js';

export { IPC_METRICS_MESSAGE_TYPE, type IpcMetricsMessage } from './ipc-metrics-message.js';

interface Topic {
  readonly subject: Subject<MetricSample>;
  refs: number;
}

/**
 * The embedded `local` metrics transport of the daemon: samples published in this process, and samples
 * that child-process replicas send over IPC (`attachChild`), are validated and emitted synchronously on
 * `samples$`. Nothing is buffered, so nothing can pile up: a sample reaches the subscribers present when
 * it arrives, or nobody. Invalid samples are counted (`stats().invalid`) and logged at most once per 10 s.
 * Single-threaded (the event loop); `close()` completes every `samples$` and detaches every child.
 */
export class LocalMetricsTransport implements MetricsTransport, ChildMetricsSink {
  readonly kind = 'local';
  private readonly all = new Subject<MetricSample>();
  private readonly topics = new Map<string, Topic>();
  private readonly detachers = new Set<() => void>();
  private readonly invalidLog: InvalidMessageLog;
  private readonly log: Logger;
  private published = 0;
  private received = 0;
  private invalid = 0;
  private dropped = 0;
  private closed = false;

  constructor(log: Logger, clock: Clock) {
    this.log = log.child({ component: 'transport/local-metrics' });
    this.invalidLog = new InvalidMessageLog(this.log, clock, 'metric sample');
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const detach of [...this.detachers]) detach();
    this.all.complete();
    for (const t of this.topics.values()) t.subject.complete();
    this.topics.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Validates and emits at once; counts as dropped after `close()`. Never throws. */
  publish(sample: MetricSample): void {
    if (this.closed) {
      this.dropped++;
      return;
    }
    if (!isMetricSample(sample)) {
      this.reject('publish', explainInvalidMetricSample(sample));
      return;
    }
    this.published++;
    this.deliver(sample);
  }

  samples$(api?: string): Observable<MetricSample> {
    if (this.closed) return EMPTY;
    if (api === undefined) return this.all.asObservable();
    return new Observable<MetricSample>((subscriber) => {
      if (this.closed) {
        subscriber.complete();
        return undefined;
      }
      let topic = this.topics.get(api);
      if (!topic) {
        topic = { subject: new Subject<MetricSample>(), refs: 0 };
        this.topics.set(api, topic);
      }
      topic.refs++;
      const sub = topic.subject.subscribe(subscriber);
      const t = topic;
      return () => {
        sub.unsubscribe();
        if (--t.refs === 0 && this.topics.get(api) === t) this.topics.delete(api);
      };
    });
  }

  stats(): TransportStats {
    return { published: this.published, received: this.received, invalid: this.invalid, dropped: this.dropped };
  }

  /**
   * Listens for `{ type: 'myelin.metrics', sample }` messages from `child` (other messages are left to
   * other listeners). Returns the function that stops listening; `close()` calls it for every child.
   */
  attachChild(child: IpcMessageSource): () => void {
    const source = `ipc:${child.pid ?? '?'}`;
    const listener = (m: unknown): void => {
      if (typeof m !== 'object' || m === null || (m as { type?: unknown }).type !== IPC_METRICS_MESSAGE_TYPE) return;
      this.fromChild((m as { sample?: unknown }).sample, source);
    };
    child.on('message', listener);
    const detach = (): void => {
      if (!this.detachers.delete(detach)) return;
      child.off('message', listener);
    };
    this.detachers.add(detach);
    return detach;
  }

  private fromChild(x: unknown, source: string): void {
    if (this.closed) return;
    if (!isMetricSample(x)) {
      this.reject(source, explainInvalidMetricSample(x));
      return;
    }
    // Without monitoring the schema bounds every string, so a valid sample is a few KB at most; class
    // maps are the one part whose encoded size must be measured.
    if (x.monitoring?.modelType === 'classification') {
      const bytes = Buffer.byteLength(JSON.stringify(x), 'utf8');
      if (bytes > MAX_METRIC_SAMPLE_BYTES) {
        this.reject(source, `${bytes} bytes > ${MAX_METRIC_SAMPLE_BYTES}`, 'oversized');
        return;
      }
    }
    this.deliver(x);
  }

  private deliver(s: MetricSample): void {
    this.received++;
    this.all.next(s);
    this.topics.get(s.api)?.subject.next(s);
  }

  private reject(source: string, detail: string, reason: 'invalid' | 'oversized' = 'invalid'): void {
    this.invalid++;
    this.invalidLog.report({ source, reason, detail });
  }
}
