import type { Clock } from '../clock.js';
import type { Logger } from '../ports/logger.js';

/**
 * A warning that a misbehaving peer could repeat thousands of times a second: logged at once the first
 * time, then at most once per `intervalMs` (default 10 s) with `suppressed`, how many were not logged in
 * between. Time comes from the injected clock (SG 2.4). Not thread-safe; one per kind of warning.
 */
export class RateLimitedWarning {
  private lastMs = Number.NEGATIVE_INFINITY;
  private suppressed = 0;
  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly msg: string,
    private readonly intervalMs = 10_000,
  ) {}

  /** Logs `fields` with the constant message unless a line went out less than `intervalMs` ago. */
  warn(fields: Readonly<Record<string, unknown>>): void {
    const now = this.clock.now();
    if (now - this.lastMs < this.intervalMs) {
      this.suppressed++;
      return;
    }
    this.lastMs = now;
    this.log.warn({ ...fields, suppressed: this.suppressed }, this.msg);
    this.suppressed = 0;
  }
}

/** What was wrong with one message that a transport dropped at its boundary. */
export interface InvalidMessage {
  /** Where it came from: a NATS subject, `ipc:<pid>`, `publish`. Chosen by the transport, never by the sender. */
  readonly source: string;
  readonly reason: 'oversized' | 'malformed' | 'invalid';
  /** The validator's explanation; cut to 300 characters in the log. */
  readonly detail: string;
}

/** Logs messages dropped as invalid, rate-limited (`RateLimitedWarning`, message `dropped an invalid message`). */
export class InvalidMessageLog {
  private readonly warning: RateLimitedWarning;
  constructor(
    log: Logger,
    clock: Clock,
    private readonly what: 'metric sample' | 'event',
    intervalMs = 10_000,
  ) {
    this.warning = new RateLimitedWarning(log, clock, 'dropped an invalid message', intervalMs);
  }

  /** Records one dropped message; logs it unless a line went out less than `intervalMs` ago. */
  report(m: InvalidMessage): void {
    const detail = m.detail.length > 300 ? `${m.detail.slice(0, 300)}…` : m.detail;
    this.warning.warn({ source: m.source, reason: m.reason, detail, kind: this.what });
  }
}
