import { EMPTY, Observable, Subject } from 'rxjs';
import type { Clock } from '../../../core/clock.js';
import type { EngineEvent } from '../../../core/events/engine-event.js';
import { EventRing } from '../../../core/events/event-ring.js';
import { checkOutgoingEvent } from '../../../core/events/event-validator.js';
import { InvalidMessageLog } from '../../../core/metrics/invalid-message-log.js';
import type { EventBus, EventQuery } from '../../../core/ports/event-bus.js';
import type { Logger } from '../../../core/ports/logger.js';
import type { TransportStats } from '../../../core/ports/metrics-transport.js';

/** Default number of events the local bus keeps for `sinceMs` replay. */
export const DEFAULT_EVENT_HISTORY = 10_000;

/**
 * The embedded `local` event bus: events published in this process are validated, kept in an
 * `EventRing` of the last `historyCapacity` (default 10 000, oldest overwritten first; a RangeError
 * unless a positive integer) and emitted synchronously. `events$({ sinceMs })` replays the retained
 * events with `t >= sinceMs` (oldest first), then follows live ones, with neither gap nor duplicate.
 * Single-threaded; `close()` completes every `events$`.
 */
export class LocalEventBus implements EventBus {
  readonly kind = 'local';
  private readonly ring: EventRing<EngineEvent>;
  private readonly live = new Subject<EngineEvent>();
  private readonly invalidLog: InvalidMessageLog;
  private published = 0;
  private received = 0;
  private invalid = 0;
  private dropped = 0;
  private closed = false;

  constructor(
    log: Logger,
    clock: Clock,
    historyCapacity = DEFAULT_EVENT_HISTORY,
  ) {
    this.ring = new EventRing<EngineEvent>(historyCapacity);
    this.invalidLog = new InvalidMessageLog(log.child({ component: 'transport/local-events' }), clock, 'event');
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.live.complete();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Validates (schema and encoded size), records and emits at once. Never throws. */
  publish(event: EngineEvent): void {
    if (this.closed) {
      this.dropped++;
      return;
    }
    const why = checkOutgoingEvent(event);
    if (why !== '') {
      this.invalid++;
      this.invalidLog.report({ source: 'publish', reason: why.includes('bytes >') ? 'oversized' : 'invalid', detail: why });
      return;
    }
    this.published++;
    this.ring.push(event);
    this.received++;
    this.live.next(event);
  }

  events$(query: EventQuery = {}): Observable<EngineEvent> {
    if (this.closed) return EMPTY;
    const { api, sinceMs } = query;
    return new Observable<EngineEvent>((subscriber) => {
      // Follow first, holding live events back while the replay runs: a subscriber that publishes
      // from its own handler must see that event after the replay, not lose it.
      let held: EngineEvent[] | undefined = [];
      const sub = this.live.subscribe({
        next: (e) => {
          if (api !== undefined && e.api !== api) return;
          if (held) held.push(e);
          else subscriber.next(e);
        },
        complete: () => subscriber.complete(),
      });
      if (sinceMs !== undefined) {
        for (const e of this.ring.since(sinceMs, api)) {
          if (subscriber.closed) break;
          subscriber.next(e);
        }
      }
      while (held.length > 0 && !subscriber.closed) {
        const batch: EngineEvent[] = held;
        held = [];
        for (const e of batch) subscriber.next(e);
      }
      held = undefined;
      return sub;
    });
  }

  stats(): TransportStats {
    return { published: this.published, received: this.received, invalid: this.invalid, dropped: this.dropped };
  }
}
