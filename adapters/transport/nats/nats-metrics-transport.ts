import { EMPTY, Observable, Subject } from 'rxjs';
import type { Clock } from '../../../core/clock.js';
import { InvalidMessageLog } from '../../../core/metrics/invalid-message-log.js';
import type { MetricSample } from '../../../core/metrics/metric-sample.js';
import { encodeMetricSampleBinary, forEachMetricSample, MetricSampleBatchEncoder } from '../../../core/metrics/metric-sample-binary.js';
import { encodeMetricSample, explainInvalidMetricSample, isMetricSample, type DecodeResult } from '../../../core/metrics/metric-sample-validator.js';
import type { Logger } from '../../../core/ports/logger.js';
import type { MetricsTransport, TransportStats } from '../../../core/ports/metrics-transport.js';
import { NatsLink, subjectEndsWith, type LinkMessage } from './nats-link.js';
import { resolveNatsOptions, type NatsTransportOptions } from './nats-options.js';

interface Topic {
  readonly subject: Subject<MetricSample>;
  refs: number;
  unsubscribe: () => void;
}

/** At most this many subjects keep a batch encoder between turns (then they start over). */
const MAX_BATCH_SUBJECTS = 10_000;

/**
 * The `nats` metrics transport: a sample goes out in the binary layout of
 * core/metrics/metric-sample-binary.ts (or UTF-8 JSON with `sampleEncoding: 'json'`) on
 * `<prefix>.metrics.<api>` (prefix `myelin` by default) and comes back, validated, on `samples$`;
 * both encodings are read (JSON is what replicas before the binary layout send). Samples published
 * to one subject in the same event-loop turn leave as one batch frame at the end of the turn (a
 * microtask; `sampleBatching: false` sends each alone); a lone sample is a plain layout-1 message, so
 * a replica's once-an-interval sample is unchanged, and while NATS is unreachable samples are queued
 * one by one. Core NATS, at most
 * once: samples are a stream of fresh readings, a lost one is superseded a second later. One NATS
 * subscription per distinct `samples$(api)` key (`<prefix>.metrics.*` for all APIs), shared by its
 * subscribers. Incoming messages that are too big, malformed (neither the layout nor JSON, or another
 * layout version), off-schema, or on a subject that is not their API's, are counted (`invalid`) and
 * logged at most once per 10 s; the stream goes on. During an outage `publish` queues a bounded
 * amount (see `NatsLink`) and drops oldest first (`dropped`).
 * `published` counts samples handed to the NATS client (a batch counts its samples, as `dropped`
 * does); `received` counts samples that arrived on any subscription, valid or not (a batch whose
 * framing is broken counts once, as one invalid message).
 */
export class NatsMetricsTransport implements MetricsTransport {
  readonly kind = 'nats';
  private readonly link: NatsLink;
  private readonly topics = new Map<string, Topic>();
  private readonly prefix: string;
  private readonly prefixBytes: number;
  private readonly invalidLog: InvalidMessageLog;
  private readonly subjects = new Map<string, string>();
  private readonly encode: (s: MetricSample) => Uint8Array;
  private readonly batching: boolean;
  /** Per subject, the batch being filled this turn (`sampleBatching`). */
  private readonly batches = new Map<string, MetricSampleBatchEncoder>();
  /** Subjects with samples waiting for the end of this turn. */
  private readonly waiting: MetricSampleBatchEncoder[] = [];
  private flushQueued = false;
  private readonly flushWaiting = (): void => this.flushBatches();
  private received = 0;
  private invalid = 0;
  private closed = false;

  constructor(options: NatsTransportOptions, log: Logger, clock: Clock) {
    const o = resolveNatsOptions(options);
    const l = log.child({ component: 'transport/nats-metrics' });
    this.prefix = `${o.subjectPrefix}.metrics.`;
    this.prefixBytes = Buffer.byteLength(this.prefix);
    this.encode = o.sampleEncoding === 'json' ? encodeMetricSample : encodeMetricSampleBinary;
    this.batching = o.sampleBatching;
    this.link = new NatsLink({ ...o.link, name: `${o.clientName}-metrics` }, l, clock);
    this.invalidLog = new InvalidMessageLog(l, clock, 'metric sample');
  }

  /** Connects (first attempt only: when NATS is down the transport keeps trying in the background). */
  async start(): Promise<void> {
    await this.link.start();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flushBatches();
    this.closed = true;
    for (const t of this.topics.values()) {
      t.unsubscribe();
      t.subject.complete();
    }
    this.topics.clear();
    await this.link.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Validates, encodes and sends (or queues during an outage). Never throws. */
  publish(sample: MetricSample): void {
    if (!isMetricSample(sample)) {
      this.invalid++;
      this.invalidLog.report({ source: 'publish', reason: 'invalid', detail: explainInvalidMetricSample(sample) });
      return;
    }
    let subject = this.subjects.get(sample.api);
    if (subject === undefined) {
      subject = this.prefix + sample.api;
      if (this.subjects.size < 10_000) this.subjects.set(sample.api, subject);
    }
    // While NATS is unreachable each sample is queued alone, so the bounded outbox keeps and drops
    // samples, oldest first, not batches of whatever one turn published.
    if (!this.batching || !this.link.connected) {
      this.link.publish(subject, this.encode(sample));
      return;
    }
    let batch = this.batches.get(subject);
    if (batch === undefined) {
      const to = subject;
      batch = new MetricSampleBatchEncoder((message, samples) => this.link.publish(to, message, samples));
      if (this.batches.size >= MAX_BATCH_SUBJECTS) this.batches.clear();
      this.batches.set(subject, batch);
    }
    if (batch.pending === 0) this.waiting.push(batch);
    batch.add(sample);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushWaiting);
    }
  }

  /** Sends the batches filled this turn, in the order their subjects were first published to. */
  private flushBatches(): void {
    this.flushQueued = false;
    const w = this.waiting;
    for (let i = 0; i < w.length; i++) w[i].flush();
    w.length = 0;
  }

  samples$(api?: string): Observable<MetricSample> {
    if (this.closed) return EMPTY;
    const key = api ?? '*';
    return new Observable<MetricSample>((subscriber) => {
      if (this.closed) {
        subscriber.complete();
        return undefined;
      }
      let topic = this.topics.get(key);
      if (!topic) {
        const subject = new Subject<MetricSample>();
        const t: Topic = { subject, refs: 0, unsubscribe: () => undefined };
        const only = api;
        t.unsubscribe = this.link.subscribe(this.prefix + key, (data, msg) => this.onMessage(subject, only, data, msg));
        this.topics.set(key, t);
        topic = t;
      }
      topic.refs++;
      const sub = topic.subject.subscribe(subscriber);
      const t = topic;
      return () => {
        sub.unsubscribe();
        if (--t.refs === 0 && this.topics.get(key) === t) {
          this.topics.delete(key);
          t.unsubscribe();
        }
      };
    });
  }

  stats(): TransportStats {
    return { published: this.link.sent, received: this.received, invalid: this.invalid, dropped: this.link.dropped };
  }

  /** True while connected and not buffering. */
  get connected(): boolean {
    return this.link.connected;
  }
  /** Samples waiting for the connection to come back. */
  get queued(): number {
    return this.link.queued;
  }
  /** Resolves once connected (immediately when already). */
  whenConnected(): Promise<void> {
    return this.link.whenConnected();
  }
  /** A round trip to the server: subscriptions made so far are in effect. Throws `TransportError` when disconnected. */
  flush(): Promise<void> {
    return this.link.flush();
  }

  /** `only`: the API of a per-API subscription (its subject is exactly `<prefix>.metrics.<only>`); undefined for `*`. */
  private onMessage(out: Subject<MetricSample>, only: string | undefined, data: Uint8Array, msg: LinkMessage): void {
    this.received += forEachMetricSample(data, (r) => this.onSample(out, only, r, msg));
  }

  private onSample(out: Subject<MetricSample>, only: string | undefined, r: DecodeResult<MetricSample>, msg: LinkMessage): void {
    if (!r.ok) {
      this.invalid++;
      this.invalidLog.report({ source: msg.subject, reason: r.reason, detail: r.detail });
      return;
    }
    // A sample must travel on its own API's subject, or per-API subscribers would miss it. The API
    // name passed the schema's DNS-label pattern, so it is ASCII (what subjectEndsWith compares).
    const api = r.value.api;
    if (only !== undefined ? api !== only : !subjectEndsWith(msg, this.prefixBytes, api)) {
      this.invalid++;
      this.invalidLog.report({ source: msg.subject, reason: 'invalid', detail: `sample of API "${api}" on the wrong subject` });
      return;
    }
    out.next(r.value);
  }
}
