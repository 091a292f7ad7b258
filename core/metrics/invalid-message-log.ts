import type { Clock } from '../clock.js';
import type { Logger } from '../ports/logger.js';

/** What was wrong with one message that a transport dropped at its boundary. */
export interface InvalidMessage {
  /** Where it came from: a NATS subject, `ipc:<pid>`, `publish`. Chosen by the transport, never by the sender. */
  readonly source: string;
  readonly reason: 'oversized' | 'malformed' | 'invalid';
  /** The validator's explanation, cut to 300 characters. */
  readonly detail: string;
}

/**
 * Logs dropped messages without letting a misbehaving sender flood the log: the first one at once,
 * then at most one line per `intervalMs` (default 10 s) carrying how many were suppressed in between.
 * Time comes from the injected clock (SG 2.4). Not thread-safe; one per transport.
 */
export class InvalidMessageLog {
  private lastMs = Number.NEGATIVE_INFINITY;
  private suppressed = 0;
  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly what: 'metric sample' | 'event',
    private readonly intervalMs = 10_000,
  ) {}

  /** Records one dropped message; logs a warning unless one was logged less than `intervalMs` ago. */
  report(m: InvalidMessage): void {
    const now = this.clock.now();
    if (now - this.lastMs < this.intervalMs) {
      this.suppressed++;
      return;
    }
    this.lastMs = now;
    const detail = m.detail.length > 300 ? `${m.detail.slice(0, 300)}…` : m.detail;
    this.log.warn(
      { source: m.source, reason: m.reason, detail, suppressed: this.suppressed, kind: this.what },
      'dropped an invalid message',
    );
    this.suppressed = 0;
  }
}
