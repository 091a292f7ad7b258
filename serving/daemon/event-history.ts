import { randomBytes } from 'node:crypto';
import { Observable, Subject } from 'rxjs';
import type { EngineEvent } from '../../core/events/engine-event.js';
import { EventRing } from '../../core/events/event-ring.js';

/**
 * This process's boot: the first part of every event id (`<boot>-<seq>`). The history lives in memory
 * only, so a restarted daemon starts a new boot and its sequence numbers mean nothing to the old ones.
 */
const BOOT = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
/** Sequence numbers given by `record`, increasing over the whole process (every history in it). */
let lastSeq = 0;
const seqs = new WeakMap<EngineEvent, number>();

/**
 * The server-sent-event id of an event recorded by an `EventHistory` of this process (`<boot>-<seq>`),
 * undefined for any other event.
 */
export function eventId(e: EngineEvent): string | undefined {
  const seq = seqs.get(e);
  return seq === undefined ? undefined : `${BOOT}-${seq}`;
}

/**
 * The id the next stream position is after: every event recorded so far in this process has an id up
 * to it. A live-only stream announces it (`: position <id>`) so a client that got no event yet can
 * still resume without a gap.
 */
export function currentEventId(): string {
  return `${BOOT}-${lastSeq}`;
}

/**
 * Which recorded events come after the one a `Last-Event-ID` names: those with a greater sequence
 * number when it is an id of this boot; every event when it is an id of another boot (an earlier
 * daemon on this state folder: everything this process recorded is newer); undefined when it is no id.
 */
export function eventsAfter(lastEventId: string): ((e: EngineEvent) => boolean) | undefined {
  const m = /^([0-9a-z]+)-(\d+)$/.exec(lastEventId.trim());
  if (!m) return undefined;
  if (m[1] !== BOOT) return () => true;
  const after = Number(m[2]);
  // An event without an id (not recorded by a history) cannot be placed: it is passed on.
  return (e) => (seqs.get(e) ?? Number.POSITIVE_INFINITY) > after;
}

/**
 * The daemon's bounded memory of recent events, for `GET /v1/events?since=` replay whatever the
 * transport: the newest `capacity` events are kept in an `EventRing`, oldest dropped first. Each
 * recorded event gets an id (`eventId`) for `Last-Event-ID` resumption. Held in memory only: a restart
 * starts empty.
 */
export class EventHistory {
  private readonly ring: EventRing<EngineEvent>;
  private readonly live = new Subject<EngineEvent>();

  /** @throws RangeError unless `capacity` is a positive integer. */
  constructor(capacity = 10_000) {
    this.ring = new EventRing<EngineEvent>(capacity);
  }

  /** Retains `e` (O(1)), gives it the next id, and emits it to followers; still retains after `complete()`. */
  record(e: EngineEvent): void {
    seqs.set(e, ++lastSeq);
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
