import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type ConsumerMessages,
  type OrderedConsumerOptions,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { EMPTY, Observable, type Subscriber } from 'rxjs';
import type { Clock } from '../../../core/clock.js';
import type { EngineEvent } from '../../../core/events/engine-event.js';
import { checkOutgoingEvent, decodeEngineEvent, encodeEngineEvent } from '../../../core/events/event-validator.js';
import { InvalidMessageLog } from '../../../core/metrics/invalid-message-log.js';
import type { EventBus, EventQuery } from '../../../core/ports/event-bus.js';
import type { Logger } from '../../../core/ports/logger.js';
import type { TransportStats } from '../../../core/ports/metrics-transport.js';
import { NatsLink } from './nats-link.js';
import { resolveNatsOptions, type NatsTransportOptions, type ResolvedNatsOptions } from './nats-options.js';

/**
 * How far before `sinceMs` the JetStream consumer starts (ms). The stream orders events by when the
 * server stored them, `sinceMs` is about the publisher's `t`; the margin covers clock skew and events
 * stored late (queued during an outage). Events with `t < sinceMs` are filtered out of the replay.
 */
const REPLAY_MARGIN_MS = 60_000;

/** One `events$` subscriber and how it is currently fed. */
interface Binding {
  readonly subject: string;
  readonly sinceMs: number | undefined;
  readonly out: Subscriber<EngineEvent>;
  mode: 'pending' | 'jetstream' | 'core';
  /** Stream sequence of the last message seen (JetStream mode); later deliveries at or below it are skipped. */
  lastSeq: number;
  /** Stream sequence to resume from when the consumer is made again; 0 until known. */
  nextSeq: number;
  /** Stream sequence at attach time: messages up to it are replay, filtered by `t >= sinceMs`. */
  replayUpTo: number;
  stop: () => void;
  attaching: Promise<void> | undefined;
}

/**
 * The `nats` event bus. Events go out as UTF-8 JSON on `<prefix>.events.<api>`. When the server has
 * JetStream, a stream (`MYELIN_EVENTS` by default, subjects `<prefix>.events.>`, file storage, bounded
 * by age, count and bytes, oldest discarded; no per-message limit below the server's `max_payload`, so
 * readers see and count oversized events like any other bad message) is created or updated on connect, and every `events$`
 * reads through an ordered consumer: `sinceMs` replays what the stream retained, and a subscriber that
 * was disconnected resumes after the last event it saw. Without JetStream the bus falls back to core
 * pub/sub: live events only, `sinceMs` replays nothing (said once in the log). Publishing during an
 * outage queues a bounded amount (`NatsLink`). Invalid incoming messages are counted and logged
 * (rate-limited) and skipped.
 */
export class NatsEventBus implements EventBus {
  readonly kind = 'nats';
  private readonly o: ResolvedNatsOptions;
  private readonly link: NatsLink;
  private readonly log: Logger;
  private readonly invalidLog: InvalidMessageLog;
  private readonly bindings = new Set<Binding>();
  private readonly prefix: string;
  private jetStream: 'unknown' | 'yes' | 'no' = 'unknown';
  private received = 0;
  private invalid = 0;
  private closed = false;

  constructor(options: NatsTransportOptions, log: Logger, clock: Clock) {
    this.o = resolveNatsOptions(options);
    this.log = log.child({ component: 'transport/nats-events' });
    this.prefix = `${this.o.subjectPrefix}.events.`;
    this.link = new NatsLink({ ...this.o.link, name: `${this.o.clientName}-events` }, this.log, clock);
    this.invalidLog = new InvalidMessageLog(this.log, clock, 'event');
    this.link.onConnected((nc) => this.onConnected(nc));
  }

  /** Connects and sets the stream up (first attempt only; keeps trying in the background). */
  async start(): Promise<void> {
    await this.link.start();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const b of [...this.bindings]) {
      b.stop();
      b.out.complete();
    }
    this.bindings.clear();
    await this.link.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Validates (schema and size), encodes and sends, or queues during an outage. Never throws. */
  publish(event: EngineEvent): void {
    const why = checkOutgoingEvent(event);
    if (why !== '') {
      this.invalid++;
      this.invalidLog.report({ source: 'publish', reason: why.includes('bytes >') ? 'oversized' : 'invalid', detail: why });
      return;
    }
    this.link.publish(this.prefix + event.api, encodeEngineEvent(event));
  }

  events$(query: EventQuery = {}): Observable<EngineEvent> {
    if (this.closed) return EMPTY;
    return new Observable<EngineEvent>((out) => {
      if (this.closed) {
        out.complete();
        return undefined;
      }
      const b: Binding = {
        subject: this.prefix + (query.api ?? '*'),
        sinceMs: query.sinceMs,
        out,
        mode: 'pending',
        lastSeq: 0,
        nextSeq: 0,
        replayUpTo: 0,
        stop: () => undefined,
        attaching: undefined,
      };
      this.bindings.add(b);
      const nc = this.link.connection;
      if (this.jetStream !== 'unknown' && nc) this.attach(b, nc);
      return () => {
        this.bindings.delete(b);
        b.stop();
      };
    });
  }

  stats(): TransportStats {
    return { published: this.link.sent, received: this.received, invalid: this.invalid, dropped: this.link.dropped };
  }

  /** True when the server offered JetStream and the stream is set up (replay available). */
  get replayAvailable(): boolean {
    return this.jetStream === 'yes';
  }
  get connected(): boolean {
    return this.link.connected;
  }
  whenConnected(): Promise<void> {
    return this.link.whenConnected();
  }

  /** Resolves when every `events$` so far is attached and in effect at the server. */
  async synced(): Promise<void> {
    await this.link.whenConnected();
    await Promise.all([...this.bindings].map((b) => b.attaching));
    await this.link.flush();
  }

  /** Resolves when everything published so far is stored in the stream (a no-op without JetStream). */
  async stored(): Promise<void> {
    await this.link.whenConnected();
    await this.link.flush();
    if (this.jetStream !== 'yes') return;
    const nc = this.link.connection;
    if (!nc) return;
    // A core publish is not acknowledged; a JetStream publish on the same connection is, and the stream
    // stores in arrival order, so once it is acknowledged everything sent before it is stored too. The
    // marker's subject has two tokens after `events.`, so no `events.*` reader ever sees it.
    const ack = await jetstream(nc).publish(`${this.prefix}_sync.marker`, new Uint8Array(0)).catch(() => undefined);
    if (ack) {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.deleteMessage(this.o.eventStream, ack.seq, false).catch(() => undefined);
    }
  }

  // ----------------------------------------------------------------------------------------------

  private async onConnected(nc: NatsConnection): Promise<void> {
    const before = this.jetStream;
    await this.ensureStream(nc);
    for (const b of this.bindings) {
      // JetStream readers are made again after every reconnect, not only on a new connection: nats.js
      // 3.4's ordered consumer, re-made after a server restart, keeps its old pull accounting and asks
      // for no more than what was left of its first batch, stalling until heartbeats are missed (30 s).
      if (b.mode === 'pending' || b.mode === 'jetstream' || (b.mode === 'core' && this.jetStream === 'yes' && before !== 'yes')) {
        b.stop();
        this.attach(b, nc);
      }
    }
    await Promise.all([...this.bindings].map((b) => b.attaching));
  }

  private async ensureStream(nc: NatsConnection): Promise<void> {
    const name = this.o.eventStream;
    if (!nc.info?.jetstream) {
      if (this.jetStream !== 'no') this.log.warn({ server: nc.getServer() }, 'NATS server has no JetStream: events are live only, no replay');
      this.jetStream = 'no';
      return;
    }
    const limits = {
      max_age: nanos(this.o.eventStreamMaxAgeMs),
      max_msgs: this.o.eventStreamMaxMessages,
      max_bytes: this.o.eventStreamMaxBytes,
      discard: DiscardPolicy.Old,
    };
    const ours = `${this.prefix}>`;
    try {
      const jsm = await jetstreamManager(nc);
      try {
        const si = await jsm.streams.info(name);
        const subjects = si.config.subjects ?? [];
        await jsm.streams.update(name, { ...limits, subjects: subjects.includes(ours) ? subjects : [...subjects, ours] });
      } catch (err) {
        if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
        await jsm.streams.add({ name, subjects: [ours], retention: RetentionPolicy.Limits, storage: StorageType.File, num_replicas: 1, ...limits });
      }
      if (this.jetStream !== 'yes') this.log.info({ stream: name, subjects: [ours] }, 'JetStream event stream ready: events$ can replay');
      this.jetStream = 'yes';
    } catch (err) {
      if (this.jetStream !== 'no') this.log.warn({ err, stream: name }, 'JetStream event stream unavailable: events are live only, no replay');
      this.jetStream = 'no';
    }
  }

  private attach(b: Binding, nc: NatsConnection): void {
    if (this.jetStream === 'yes') {
      b.mode = 'jetstream';
      b.attaching = this.attachJetStream(b, nc).catch((err: unknown) => {
        // The consumer will be made again on the next (re)connection.
        b.mode = 'pending';
        if (!this.closed && !b.out.closed) this.log.warn({ err, subject: b.subject }, 'could not follow the event stream; retrying on reconnect');
      });
      return;
    }
    b.mode = 'core';
    if (b.sinceMs !== undefined) this.log.info({ subject: b.subject }, 'no JetStream: events$ replays nothing, live events only');
    b.stop = this.link.subscribe(b.subject, (data, msg) => this.onMessage(b, data, msg.subject, 0));
    b.attaching = undefined;
  }

  private async attachJetStream(b: Binding, nc: NatsConnection): Promise<void> {
    const stream = this.o.eventStream;
    const jsm = await jetstreamManager(nc);
    const last = (await jsm.streams.info(stream)).state.last_seq;
    const opts: Partial<OrderedConsumerOptions> = { filter_subjects: b.subject };
    if (b.nextSeq > 0) {
      opts.opt_start_seq = b.nextSeq;
    } else if (b.sinceMs !== undefined) {
      opts.opt_start_time = new Date(Math.max(0, b.sinceMs - REPLAY_MARGIN_MS)).toISOString();
      b.replayUpTo = last;
    } else {
      // "From the next one on", as a sequence, kept for when the consumer must be made again.
      b.nextSeq = last + 1;
      opts.opt_start_seq = b.nextSeq;
    }
    const consumer = await jetstream(nc).consumers.get(stream, opts);
    const messages: ConsumerMessages = await consumer.consume({ max_messages: 256, expires: 10_000 });
    if (this.closed || !this.bindings.has(b)) {
      messages.stop();
      return;
    }
    b.stop = () => {
      messages.stop();
    };
    void (async () => {
      for await (const n of messages.status()) {
        if (n.type === 'heartbeats_missed' || n.type === 'ordered_consumer_recreated' || n.type === 'reset') {
          this.log.debug({ subject: b.subject, notification: n }, 'event stream consumer status');
        }
      }
    })().catch(() => undefined);
    void (async () => {
      try {
        for await (const m of messages) this.onMessage(b, m.data, m.subject, m.seq);
      } catch (err) {
        if (!this.closed && this.bindings.has(b)) this.log.warn({ err, subject: b.subject }, 'event stream consumer stopped');
      }
    })();
  }

  private onMessage(b: Binding, data: Uint8Array, subject: string, seq: number): void {
    if (seq > 0) {
      if (seq <= b.lastSeq) return;
      b.lastSeq = seq;
      b.nextSeq = seq + 1;
    }
    this.received++;
    const r = decodeEngineEvent(data);
    if (!r.ok) {
      this.invalid++;
      this.invalidLog.report({ source: subject, reason: r.reason, detail: r.detail });
      return;
    }
    const e = r.value;
    if (subject.length !== this.prefix.length + e.api.length || !subject.endsWith(e.api)) {
      this.invalid++;
      this.invalidLog.report({ source: subject, reason: 'invalid', detail: `event of API "${e.api}" on the wrong subject` });
      return;
    }
    if (seq > 0 && seq <= b.replayUpTo && b.sinceMs !== undefined && e.t < b.sinceMs) return;
    b.out.next(e);
  }
}
