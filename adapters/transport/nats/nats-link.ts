import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Clock } from '../../../core/clock.js';
import { backoffDelayMs, withJitterMs } from '../../../core/backoff.js';
import { TransportError } from '../../../core/errors.js';
import { RateLimitedWarning } from '../../../core/metrics/invalid-message-log.js';
import type { Logger } from '../../../core/ports/logger.js';
import { BoundedQueue } from './bounded-queue.js';

/** Connection settings shared by the NATS metrics transport and event bus. */
export interface NatsLinkOptions {
  /** One URL or several, e.g. `nats://127.0.0.1:4222`. */
  readonly servers: string | readonly string[];
  /** Client name shown by the server (`nats server report connections`). */
  readonly name: string;
  /** Messages held while not connected; beyond it the oldest are dropped. */
  readonly outboxMaxMessages: number;
  /** Bytes held while not connected; beyond it the oldest are dropped. */
  readonly outboxMaxBytes: number;
  /** First reconnect wait (ms); doubles per failed attempt up to `reconnectMaxWaitMs`. */
  readonly reconnectMinWaitMs: number;
  readonly reconnectMaxWaitMs: number;
  /** How long one connection attempt may take (ms). */
  readonly connectTimeoutMs: number;
  /** Client pings (ms) and unanswered pings before the connection counts as stale. */
  readonly pingIntervalMs: number;
  readonly maxPingOut: number;
}

/** A received message's subject: nats.js decodes it to text only when `subject` is read. */
export interface LinkMessage {
  readonly subject: string;
}

/**
 * What a subscriber of the link receives: the payload (a view, copy it to keep it) and the message,
 * whose subject is decoded only when read (`subjectIs` compares it without decoding).
 */
export type LinkHandler = (data: Uint8Array, msg: LinkMessage) => void;

/**
 * True when the subject of `msg`, received on a subscription `<head>.*` whose literal `<head>.` is
 * `headBytes` bytes long (NATS matched that part), is that head followed by `tail`, an ASCII token.
 * Compared on nats.js's raw subject bytes when it keeps them (`MsgImpl._msg.subject`, a Uint8Array),
 * so no string is decoded per message (≈ 0.1 µs of the metrics path's receive cost,
 * docs/transports.md#wire-encoding); on the decoded text when it does not.
 */
export function subjectEndsWith(msg: LinkMessage, headBytes: number, tail: string): boolean {
  const raw = (msg as { _msg?: { subject?: unknown } })._msg?.subject;
  if (!(raw instanceof Uint8Array)) {
    const s = msg.subject;
    return s.endsWith(tail) && Buffer.byteLength(s) === headBytes + tail.length;
  }
  if (raw.length !== headBytes + tail.length) return false;
  for (let i = 0; i < tail.length; i++) if (raw[headBytes + i] !== tail.charCodeAt(i)) return false;
  return true;
}

interface LinkSub {
  readonly subject: string;
  readonly handler: LinkHandler;
  sub?: Subscription;
}

/**
 * Called when the link has a usable connection, before queued messages go out: `fresh` is true for a
 * new connection object (the first, or after the previous one closed for good), false after the client
 * reconnected on its own. Errors are logged, never fatal.
 */
export type ConnectedHook = (nc: NatsConnection, fresh: boolean) => Promise<void>;

/**
 * One NATS connection that never gives up (internal to the nats adapter): the first connection is
 * retried in the background with backoff when the server is not there yet; after that nats.js
 * reconnects forever (`maxReconnectAttempts: -1`) with the same backoff, and if the connection ever
 * closes for good a new one is dialed. While the link is not usable, `publish` queues into a bounded
 * outbox that drops oldest first (`dropped`); nats.js v3 has no reconnect buffer of its own (it resets
 * its outbound buffer at every dial), so nothing is handed to it while disconnected. Subscriptions
 * survive reconnects (nats.js resubscribes) and new connections (re-made here).
 */
export class NatsLink {
  private nc: NatsConnection | undefined;
  /** True when messages may be handed to nats.js. */
  private usable = false;
  /** Bumped on every disconnect, so a slow hook cannot mark a newer outage usable. */
  private epoch = 0;
  private closing = false;
  private failedAttempts = 0;
  private readonly outbox: BoundedQueue<{ subject: string; data: Uint8Array; units: number }>;
  private readonly subs = new Set<LinkSub>();
  private readonly hooks: ConnectedHook[] = [];
  private readonly log: Logger;
  private readonly unreachable: RateLimitedWarning;
  private readonly dropWarning: RateLimitedWarning;
  private sleepTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private firstAttempt: Promise<void> | undefined;
  private readonly waiters = new Set<() => void>();
  /** Messages handed to nats.js, in the units `publish` was given (1 a message by default). */
  sent = 0;

  constructor(
    private readonly options: NatsLinkOptions,
    log: Logger,
    clock: Clock,
  ) {
    this.log = log;
    this.outbox = new BoundedQueue(options.outboxMaxMessages, options.outboxMaxBytes, (m) => m.units);
    this.unreachable = new RateLimitedWarning(log, clock, 'NATS not reachable, retrying');
    this.dropWarning = new RateLimitedWarning(log, clock, 'NATS outbox full: dropped oldest messages');
  }

  /** Messages dropped from the outbox (oldest first), or left in it at `close()`, in `publish`'s units. */
  get dropped(): number {
    return this.outbox.dropped;
  }
  /** Messages waiting for a connection. */
  get queued(): number {
    return this.outbox.length;
  }
  get connected(): boolean {
    return this.usable;
  }
  /** The current connection (for JetStream calls inside the adapter), if any. */
  get connection(): NatsConnection | undefined {
    return this.nc;
  }

  /** Registers a hook run on every (re)connection before queued messages are sent. */
  onConnected(hook: ConnectedHook): void {
    this.hooks.push(hook);
  }

  /**
   * Starts connecting. Resolves after the first attempt, connected or not: when the server is not there
   * the link keeps trying in the background and `publish` queues meanwhile. Never rejects.
   */
  start(): Promise<void> {
    this.firstAttempt ??= new Promise<void>((resolve) => {
      void this.connectLoop(resolve);
    });
    return this.firstAttempt;
  }

  /** Resolves when the link is usable (or closing); for tests and orderly start-up. */
  whenConnected(): Promise<void> {
    if (this.usable || this.closing) return Promise.resolve();
    return new Promise((resolve) => this.waiters.add(resolve));
  }

  /**
   * Sends now when usable, else queues (bounded, oldest dropped). `units` is what the message counts
   * for in `sent` and `dropped` (the samples of a batch). Never throws.
   */
  publish(subject: string, data: Uint8Array, units = 1): void {
    if (this.usable && this.outbox.length === 0) {
      try {
        this.nc!.publish(subject, data);
        this.sent += units;
        return;
      } catch {
        // closed or draining under us: queue it, the connection handling will catch up
      }
    }
    if (this.closing) {
      this.outbox.dropped += units;
      return;
    }
    const before = this.outbox.dropped;
    this.outbox.push({ subject, data, units }, data.byteLength + subject.length);
    if (this.outbox.dropped !== before) {
      this.dropWarning.warn({ dropped: this.outbox.dropped, queued: this.outbox.length, queuedBytes: this.outbox.bytes });
    }
  }

  /** Subscribes `handler` to `subject` on this and every later connection; returns the unsubscribe. */
  subscribe(subject: string, handler: LinkHandler): () => void {
    const ls: LinkSub = { subject, handler };
    this.subs.add(ls);
    if (this.nc && !this.nc.isClosed()) this.bind(this.nc, ls);
    return () => {
      this.subs.delete(ls);
      this.unbind(ls);
    };
  }

  /** A round trip to the server: every subscription made and message sent before it has been processed. */
  async flush(): Promise<void> {
    const nc = this.nc;
    if (!this.usable || !nc) throw new TransportError('NATS is not connected');
    await nc.flush();
  }

  /** Stops reconnecting, sends what is queued if connected, closes. Queued messages left are counted as dropped. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.sleepTimer) clearTimeout(this.sleepTimer);
    this.wake?.();
    for (const w of this.waiters) w();
    this.waiters.clear();
    const nc = this.nc;
    if (nc && !nc.isClosed()) {
      if (this.usable) {
        this.drainOutbox(nc);
        try {
          await Promise.race([nc.flush(), new Promise((r) => setTimeout(r, 2000).unref())]);
        } catch {
          // disconnected meanwhile: what was not flushed is lost with the connection
        }
      }
      await nc.close().catch(() => undefined);
    }
    this.outbox.dropped += this.outbox.clear();
    this.usable = false;
  }

  // ----------------------------------------------------------------------------------------------

  /** Wait before the next dial: the core backoff for the failed attempts so far (the first try counts as one), plus jitter. */
  private backoffMs(): number {
    const { reconnectMinWaitMs: min, reconnectMaxWaitMs: max } = this.options;
    return withJitterMs(backoffDelayMs(this.failedAttempts + 1, min, max), Math.random());
  }

  private async connectLoop(firstDone: () => void): Promise<void> {
    this.failedAttempts = 0;
    while (!this.closing) {
      try {
        const nc = await connect({
          servers: typeof this.options.servers === 'string' ? this.options.servers : [...this.options.servers],
          name: this.options.name,
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectDelayHandler: () => this.backoffMs(),
          timeout: this.options.connectTimeoutMs,
          pingInterval: this.options.pingIntervalMs,
          maxPingOut: this.options.maxPingOut,
        });
        if (this.closing) {
          await nc.close().catch(() => undefined);
          break;
        }
        await this.adopt(nc);
        break;
      } catch (err) {
        this.unreachable.warn({ err, servers: this.options.servers, attempt: this.failedAttempts + 1 });
        firstDone();
        await this.sleep(this.backoffMs());
        this.failedAttempts++;
      }
    }
    firstDone();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.sleepTimer = setTimeout(resolve, ms);
    });
  }

  private async adopt(nc: NatsConnection): Promise<void> {
    this.nc = nc;
    this.failedAttempts = 0;
    for (const ls of this.subs) this.bind(nc, ls);
    void this.followStatus(nc);
    void nc.closed().then((err) => {
      if (this.closing || this.nc !== nc) return;
      this.usable = false;
      this.epoch++;
      this.nc = undefined;
      this.log.error({ err }, 'NATS connection closed; dialing a new one');
      void this.connectLoop(() => undefined);
    });
    this.log.info({ server: nc.getServer() }, 'NATS connected');
    await this.becomeUsable(nc, true);
  }

  private async becomeUsable(nc: NatsConnection, fresh: boolean): Promise<void> {
    const epoch = this.epoch;
    for (const hook of this.hooks) {
      try {
        await hook(nc, fresh);
      } catch (err) {
        this.log.warn({ err }, 'NATS connection hook failed');
      }
    }
    if (this.closing || epoch !== this.epoch || this.nc !== nc || nc.isClosed()) return;
    this.usable = true;
    this.drainOutbox(nc);
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  private drainOutbox(nc: NatsConnection): void {
    const n = this.outbox.length;
    for (let m = this.outbox.peek(); m !== undefined; m = this.outbox.peek()) {
      try {
        nc.publish(m.subject, m.data);
      } catch {
        return;
      }
      this.outbox.shift();
      this.sent += m.units;
    }
    if (n > 0) this.log.info({ sent: n, dropped: this.outbox.dropped }, 'NATS outbox flushed');
  }

  private async followStatus(nc: NatsConnection): Promise<void> {
    try {
      for await (const s of nc.status()) {
        switch (s.type) {
          case 'disconnect':
            this.usable = false;
            this.epoch++;
            this.log.warn({ server: s.server }, 'NATS disconnected; buffering');
            break;
          case 'reconnecting':
            this.failedAttempts++;
            break;
          case 'reconnect':
            this.failedAttempts = 0;
            this.log.info({ server: s.server, queued: this.outbox.length }, 'NATS reconnected');
            await this.becomeUsable(nc, false);
            break;
          case 'slowConsumer':
            this.log.warn({ subject: s.sub.getSubject(), pending: s.pending }, 'NATS slow consumer');
            break;
          case 'error':
            this.log.warn({ err: s.error }, 'NATS async error');
            break;
          default:
            break;
        }
      }
    } catch (err) {
      if (!this.closing) this.log.warn({ err }, 'NATS status stream failed');
    }
  }

  private bind(nc: NatsConnection, ls: LinkSub): void {
    try {
      ls.sub = nc.subscribe(ls.subject, {
        callback: (err, msg) => {
          if (err) {
            this.log.warn({ err, subject: ls.subject }, 'NATS subscription error');
            return;
          }
          ls.handler(msg.data, msg);
        },
      });
    } catch (err) {
      this.log.warn({ err, subject: ls.subject }, 'NATS subscribe failed');
    }
  }

  private unbind(ls: LinkSub): void {
    const sub = ls.sub;
    ls.sub = undefined;
    if (sub && !sub.isClosed()) {
      try {
        sub.unsubscribe();
      } catch {
        // the connection is gone: so is the subscription
      }
    }
  }
}
