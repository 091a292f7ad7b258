import type { NatsLinkOptions } from './nats-link.js';

/** Settings of the `nats` transports; only `servers` is required. */
export interface NatsTransportOptions {
  /** One URL or several (`--nats URL`), e.g. `nats://127.0.0.1:4222`. */
  readonly servers: string | readonly string[];
  /** First subject token: subjects are `<prefix>.metrics.<api>` and `<prefix>.events.<api>`. Default `myelin`. */
  readonly subjectPrefix?: string;
  /** JetStream stream that keeps events for replay; default `MYELIN_EVENTS`. */
  readonly eventStream?: string;
  /** Events older than this are discarded from the stream (ms); default 24 h. */
  readonly eventStreamMaxAgeMs?: number;
  /** Events the stream keeps at most (oldest discarded first); default 100 000. */
  readonly eventStreamMaxMessages?: number;
  /** Bytes the stream keeps at most; default 64 MiB. */
  readonly eventStreamMaxBytes?: number;
  /** Messages each transport holds while NATS is unreachable (oldest dropped beyond); default 10 000. */
  readonly outboxMaxMessages?: number;
  /** Bytes each transport holds while NATS is unreachable; default 8 MiB. */
  readonly outboxMaxBytes?: number;
  /** Reconnect backoff: first wait and cap (ms); defaults 250 and 5 000. */
  readonly reconnectMinWaitMs?: number;
  readonly reconnectMaxWaitMs?: number;
  /** Timeout of one connection attempt (ms); default 5 000. */
  readonly connectTimeoutMs?: number;
  /** Client ping interval (ms) and missed pings before the connection is stale; defaults 10 000 and 2. */
  readonly pingIntervalMs?: number;
  readonly maxPingOut?: number;
  /** Connection name prefix shown by the server; default `myelin`. */
  readonly clientName?: string;
  /**
   * How published metric samples are encoded: `binary` (default, layout 1 of
   * core/metrics/metric-sample-binary.ts) or `json` (what daemons before it read). Receiving always
   * accepts both. Set `json` on replicas only while a daemon older than the binary layout still reads.
   */
  readonly sampleEncoding?: 'binary' | 'json';
  /**
   * With `binary`: samples published to one API's subject in the same event-loop turn go out as one
   * batch frame (core/metrics/metric-sample-binary.ts, `MetricSampleBatchEncoder`) instead of one
   * message each; default true. A lone sample, which is what a replica publishes each interval, is a
   * plain layout-1 message either way. Set false for a receiver that reads layout 1 but not batches.
   */
  readonly sampleBatching?: boolean;
}

const TOKEN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const STREAM = /^[A-Za-z0-9_-]+$/;

export interface ResolvedNatsOptions {
  readonly subjectPrefix: string;
  readonly eventStream: string;
  readonly eventStreamMaxAgeMs: number;
  readonly eventStreamMaxMessages: number;
  readonly eventStreamMaxBytes: number;
  readonly clientName: string;
  readonly sampleEncoding: 'binary' | 'json';
  readonly sampleBatching: boolean;
  readonly link: Omit<NatsLinkOptions, 'name'>;
}

/** Fills the defaults in; throws `RangeError` for a prefix or stream name NATS would not accept. */
export function resolveNatsOptions(o: NatsTransportOptions): ResolvedNatsOptions {
  const subjectPrefix = o.subjectPrefix ?? 'myelin';
  if (!TOKEN.test(subjectPrefix)) throw new RangeError(`NATS subject prefix "${subjectPrefix}" must be dot-separated tokens of A-Z a-z 0-9 _ -`);
  const eventStream = o.eventStream ?? 'MYELIN_EVENTS';
  if (!STREAM.test(eventStream)) throw new RangeError(`JetStream stream name "${eventStream}" must be A-Z a-z 0-9 _ -`);
  if (o.sampleEncoding !== undefined && o.sampleEncoding !== 'binary' && o.sampleEncoding !== 'json') {
    throw new RangeError(`metric sample encoding "${String(o.sampleEncoding)}" must be binary or json`);
  }
  return {
    subjectPrefix,
    eventStream,
    eventStreamMaxAgeMs: o.eventStreamMaxAgeMs ?? 24 * 3600_000,
    eventStreamMaxMessages: o.eventStreamMaxMessages ?? 100_000,
    eventStreamMaxBytes: o.eventStreamMaxBytes ?? 64 * 1024 * 1024,
    clientName: o.clientName ?? 'myelin',
    sampleEncoding: o.sampleEncoding ?? 'binary',
    sampleBatching: (o.sampleEncoding ?? 'binary') === 'binary' && o.sampleBatching !== false,
    link: {
      servers: o.servers,
      outboxMaxMessages: o.outboxMaxMessages ?? 10_000,
      outboxMaxBytes: o.outboxMaxBytes ?? 8 * 1024 * 1024,
      reconnectMinWaitMs: o.reconnectMinWaitMs ?? 250,
      reconnectMaxWaitMs: o.reconnectMaxWaitMs ?? 5_000,
      connectTimeoutMs: o.connectTimeoutMs ?? 5_000,
      pingIntervalMs: o.pingIntervalMs ?? 10_000,
      maxPingOut: o.maxPingOut ?? 2,
    },
  };
}
