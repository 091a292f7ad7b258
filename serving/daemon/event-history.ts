import { Observable, Subject } from 'rxjs';
import type { EngineEvent } from '../../core/events/engine-event.js';
import { EventRing } from '../../core/events/event-ring.js';

/**
 * The daemon's bounded memory of recent events, for `GET /v1/events?since=` replay whatever the
 * transport: the newest `capacity` events are kept in an `EventRing`, oldest dropped first.
 */
export class EventHistory {
  private readonly ring: EventRing<EngineEvent>;
  private readonly live = new Subject<EngineEvent>();

  /** @throws RangeError unless `capacity` is a positive integer. */
  constructor(capacity = 10_000) {
    this.ring = new EventRing<EngineEvent>(capacity);
  }

  /** Retains `e` (O(1)) and emits it to followers; still retains after `complete()`. */
  record(e: EngineEvent): void {
    this.ring.push(e);
    this.live.next(e);
  }

  /** Retained events with `t >= sinceMs` (and of `api` when given), oldest first. */
  since(sinceMs: number, api?: string): EngineEvent[] {
    return this.ring.since(sinceMs, api);
  }

  /** Replays `since(...)`, then follows live events; never completes. */
  follow(sinceMs: number | undefined, api?: string): Observable<EngineEvent> {
    return new Observable<EngineEvent>((subscriber) => {
      const sub = this.live.subscribe((e) => {
        if (api === undefined || e.api === api) subscriber.next(e);
      });
      if (sinceMs !== undefined) for (const e of this.since(sinceMs, api)) subscriber.next(e);
      return sub;
    });
  }

  complete(): void {
    this.live.complete();
  }
}
