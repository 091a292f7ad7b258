/**
 * The daemon's events read straight from NATS (a daemon run with `--nats URL`), for programs that
 * have the broker but not the control API. It is a thin wrapper over the daemon's own `NatsEventBus`
 * (adapters/transport/nats/): the same subjects (`<prefix>.events.<api>`), the same JetStream replay
 * (`since`), the same validation (core/events/event-validator.ts) and reconnection.
 */
import { pino, type Logger } from 'pino';
import { Observable } from 'rxjs';
import type { Clock } from '../../core/clock.js';
import type { EngineEvent } from '../../core/events/engine-event.js';
import { NatsEventBus } from '../../adapters/transport/nats/nats-event-bus.js';

export interface NatsEventsOptions {
  /** One URL or several, e.g. `nats://127.0.0.1:4222` (the daemon's `--nats`). */
  readonly servers: string | readonly string[];
  /** Only this API's events (subject `<prefix>.events.<api>`); default every API. */
  readonly api?: string;
  /**
   * Replay the events the JetStream stream retained with `t >= since` (ms since the epoch) first;
   * default: live events only. Without JetStream on the server the replay is empty (logged).
   */
  readonly since?: number;
  /** First subject token, as the daemon's; default `myelin`. */
  readonly subjectPrefix?: string;
  /** The JetStream stream of the events, as the daemon's; default `MYELIN_EVENTS`. */
  readonly eventStream?: string;
  /**
   * Where connection problems and invalid messages (dropped, counted, rate-limited) are logged; default
   * pino JSON lines on stderr at `MYELIN_LOG_LEVEL`, else `warn`.
   */
  readonly log?: Logger;
  /** Connection name shown by the server (suffixed `-events`); default `myelin-client`. */
  readonly clientName?: string;
}

const wallClock: Clock = { now: () => Date.now() };

/**
 * The events on NATS as an `Observable`. Each subscription opens its own connection (retried in the
 * background when the server is not there yet, reconnected after an outage, resuming after the last
 * event seen when JetStream is on), closed on unsubscribe. Messages that fail the event schema (or are
 * on another API's subject) are dropped and logged. Never completes on its own; errors only for
 * options NATS would not accept (a subject prefix or stream name).
 *
 * Note: on connecting, the bus makes sure the JetStream stream exists with the default limits (as the
 * daemon does), so a reader of a stream configured otherwise should not use this.
 */
export function natsEvents$(options: NatsEventsOptions): Observable<EngineEvent> {
  return new Observable<EngineEvent>((out) => {
    const log = options.log ?? pino({ level: process.env.MYELIN_LOG_LEVEL ?? 'warn' }, pino.destination({ fd: 2, sync: true }));
    const bus = new NatsEventBus(
      {
        servers: options.servers,
        subjectPrefix: options.subjectPrefix,
        eventStream: options.eventStream,
        clientName: options.clientName ?? 'myelin-client',
      },
      log,
      wallClock,
    );
    const sub = bus.events$({ api: options.api, sinceMs: options.since }).subscribe(out);
    void bus.start();
    return () => {
      sub.unsubscribe();
      void bus.close();
    };
  });
}
