import type { Observable } from 'rxjs';
import type { EngineEvent } from '../events/engine-event.js';
import type { TransportStats } from './metrics-transport.js';

export interface EventQuery {
  /** Only this API's events. */
  readonly api?: string;
  /** Replay retained events with `t >= sinceMs` before the live ones (bounded history / JetStream). */
  readonly sinceMs?: number;
}

/**
 * Publishes and subscribes to engine events (subject `myelin.events.<api>`). Kinds: `local`, `nats`
 * (with a JetStream stream for replay when the server offers JetStream).
 */
export const EventBus = Symbol('EventBus');
export interface EventBus {
  readonly kind: string;
  start(): Promise<void>;
  close(): Promise<void>;
  publish(event: EngineEvent): void;
  events$(query?: EventQuery): Observable<EngineEvent>;
  stats(): TransportStats;
}
