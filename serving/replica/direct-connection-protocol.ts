/**
 * The IPC messages of direct connections (docs/gateway.md, *Direct connections*): the daemon's
 * gateway hands an accepted client connection to a local replica process, which then serves the
 * connection's requests itself, so steady keep-alive traffic skips the proxy hop.
 *
 * - daemon → replica: `ConnectionMessage`, with the client's socket as the message's handle;
 * - daemon → replica: `ShedMessage`, keep at most `keep` direct connections (a scale-up rebalances);
 * - daemon → replica: `RevokeMessage`, the gateway's routes changed: routes older than `generation`
 *   no longer hold (every later request on those connections goes back through the gateway);
 * - replica → daemon: `DirectStatsMessage` every second while anything changed.
 */

export const DIRECT_MESSAGES = {
  connection: 'myelin.replica.connection',
  shed: 'myelin.replica.shed',
  revoke: 'myelin.replica.revoke',
  stats: 'myelin.replica.direct-stats',
} as const;

/**
 * Header a replica adds to the requests of a direct connection that are not for its API, which it
 * sends back through the gateway: the gateway never hands such a connection to a replica again.
 */
export const VIA_REPLICA_HEADER = 'x-myelin-via-replica';

/** What a replica needs to serve a handed connection as the gateway would. */
export interface DirectRoute {
  readonly api: string;
  /** Request paths (no query) that are this API's on the port the client connected to: its endpoint, and `/` when it is the port's only API. */
  readonly paths: readonly string[];
  /** Where the client connected (the gateway's listener): requests for any other path go there. */
  readonly back: { readonly host: string; readonly port: number };
  /** The gateway's keep-alive timeout for client connections (ms): a direct connection idles out as it would there. */
  readonly keepAliveTimeoutMs: number;
  /** The gateway's route generation this route was read from (see `RevokeMessage`). */
  readonly generation: number;
}

export interface ConnectionMessage {
  readonly type: typeof DIRECT_MESSAGES.connection;
  /** The bytes the gateway read from the connection before handing it over, as latin1. */
  readonly head: string;
  readonly route: DirectRoute;
}

export interface RevokeMessage {
  readonly type: typeof DIRECT_MESSAGES.revoke;
  /** Connections handed with a route of an older generation are served by the gateway from their next request on, and then closed. */
  readonly generation: number;
}

export interface ShedMessage {
  readonly type: typeof DIRECT_MESSAGES.shed;
  /** Direct connections to keep; the others close after their next response (or once idle for a second). */
  readonly keep: number;
}

/** Counts since the previous report, except `inFlight` and `connections`, which are the current values. */
export interface DirectStatsMessage {
  readonly type: typeof DIRECT_MESSAGES.stats;
  readonly api: string;
  readonly s2xx: number;
  readonly s3xx: number;
  readonly s4xx: number;
  readonly s5xx: number;
  readonly latencyMsSum: number;
  /** Requests whose client left before a response head. */
  readonly aborted: number;
  /** Direct connections that closed. */
  readonly closed: number;
  readonly inFlight: number;
  readonly connections: number;
}

function isObject(m: unknown): m is Record<string, unknown> {
  return typeof m === 'object' && m !== null;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

export function isConnectionMessage(m: unknown): m is ConnectionMessage {
  if (!isObject(m) || m.type !== DIRECT_MESSAGES.connection || typeof m.head !== 'string') return false;
  const r = m.route;
  if (!isObject(r) || typeof r.api !== 'string' || !Array.isArray(r.paths) || !r.paths.every((p) => typeof p === 'string')) return false;
  const b = r.back;
  return isObject(b) && typeof b.host === 'string' && typeof b.port === 'number' && isCount(r.keepAliveTimeoutMs) && isCount(r.generation);
}

export function isRevokeMessage(m: unknown): m is RevokeMessage {
  return isObject(m) && m.type === DIRECT_MESSAGES.revoke && isCount(m.generation);
}

export function isShedMessage(m: unknown): m is ShedMessage {
  return isObject(m) && m.type === DIRECT_MESSAGES.shed && isCount(m.keep);
}

export function isDirectStatsMessage(m: unknown): m is DirectStatsMessage {
  if (!isObject(m) || m.type !== DIRECT_MESSAGES.stats || typeof m.api !== 'string') return false;
  for (const k of ['s2xx', 's3xx', 's4xx', 's5xx', 'latencyMsSum', 'aborted', 'closed', 'inFlight', 'connections']) if (!isCount(m[k])) return false;
  return true;
}
