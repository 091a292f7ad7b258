import { Observable, Subject } from 'rxjs';
import type { EngineEvent } from '../../core/events/engine-event.js';

/**
 * The daemon's bounded memory of recent events, for `GET /v1/events?since=` replay whatever the
 * transport: the newest `capacity` events are kept, oldest dropped first.
 */
export class EventHistory {
  private readonly ring: EngineEvent[] = [];
  private readonly live = new Subject<EngineEvent>();
  constructor(private readonly capacity = 10_000) {}

  record(e: EngineEvent): void {
    this.ring.push(e);
    if (this.ring.length > this.capacity) this.ring.splice(0, this.ring.length - this.capacity);
    this.live.next(e);
  }

  /** Retained events with `t >= sinceMs` (and of `api` when given), oldest first. */
  since(sinceMs: number, api?: string): EngineEvent[] {
    return this.ring.filter((e) => e.t >= sinceMs && (api === undefined || e.api === api));
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
