import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Observable, Subscription } from 'rxjs';
import { DEFAULT_GATEWAY_PORT, type AutoscalingSpec, type NetworkingSpec } from '../../core/config/api-spec.js';
import { EngineError } from '../../core/errors.js';
import type { Logger } from '../../core/ports/logger.js';
import type { ReplicaInfo } from '../../core/ports/orchestrator-target.js';
import { ApiKeyCheck, sendUnauthorized } from './api-keys.js';
import { ApiRequestStats, type GatewayApiStats } from './api-request-stats.js';
import { ColdStartHold, DEFAULT_HOLD_TIMEOUT_MS, DEFAULT_MAX_HELD_REQUESTS, type ColdStartListener } from './cold-start-hold.js';
import { forwardRequest, sendJsonError, type ForwardContext } from './forward-request.js';
import { GatewayMetrics, type GatewayMetricsEntry } from './gateway-metrics.js';
import { declaredContentLength } from './proxy-headers.js';
import { DIRECT_MESSAGES, isDirectStatsMessage, type ConnectionMessage, type DirectRoute, type DirectStatsMessage, type RevokeMessage, type ShedMessage } from '../replica/direct-connection-protocol.js';
import { directRequestPath, stopReading, type DirectChannel } from './direct-handoff.js';
import { GatewayProtocolV2 } from './protocol-v2-routes.js';
import { DEFAULT_AGENT_OPTIONS, DirectCounts, type UpstreamAgentOptions } from './upstream.js';
import { UpstreamPool } from './upstream-pool.js';
import { TrafficSplitterRoute, type GatewaySplitterSpec, type SplitterStats } from './traffic-splitter.js';

/** The part of an `ApiSpec` the gateway reads; a full `ApiSpec` fits. */
export interface GatewayApiSpec {
  readonly name: string;
  readonly networking: Pick<NetworkingSpec, 'endpoint' | 'localPort' | 'maxBodyBytes'>;
  /** With `minReplicas` 0, requests that find no ready replica are held (`maxHeldRequests`, `holdTimeoutMs`). */
  readonly autoscaling: Pick<AutoscalingSpec, 'maxReplicaConcurrency'> & Partial<Pick<AutoscalingSpec, 'minReplicas' | 'maxHeldRequests' | 'holdTimeoutMs'>>;
}

/** Settings of the gateway (all optional); the daemon binds them under `GatewayConfig`. */
export interface GatewayConfig {
  /** Interface to listen on; default `127.0.0.1`. */
  readonly host?: string;
  /** The shared port every API is reachable on; default `DEFAULT_GATEWAY_PORT` (8888); 0 lets the OS pick (tests). */
  readonly port?: number;
  /**
   * The `networking.localPort` value that means "only the shared port" (the spec default, `DEFAULT_GATEWAY_PORT`, 8888). An API
   * with another `localPort` is reachable on the shared port and on its own port.
   */
  readonly sharedLocalPort?: number;
  /** A replica connection not established after this long is treated as refused, ms (default 5000). */
  readonly connectTimeoutMs?: number;
  /** A replica that refused a connection is tried last for this long, ms (default 2000). */
  readonly ejectMs?: number;
  /** `close()` waits this long for in-flight requests before cutting connections, ms (default 10000). */
  readonly closeGraceMs?: number;
  /** Keep-alive pool sizes per replica. */
  readonly agent?: Partial<UpstreamAgentOptions>;
  /**
   * Body bytes kept per request until the replica's response head arrives, so that a request whose
   * reused keep-alive connection is reset before any response byte can be replayed (default 256 KiB).
   */
  readonly replayBodyBytes?: number;
  /** A client connection that has not sent a complete request head after this long is closed, ms (default 10000). */
  readonly headersTimeoutMs?: number;
  /**
   * A request whose head and body have not fully arrived after this long is answered 408 and its
   * connection closed, ms (default 60000; 0 disables). Covers a stalled upload.
   */
  readonly requestTimeoutMs?: number;
  /** An idle keep-alive client connection is closed after this long, ms (default 5000). */
  readonly keepAliveTimeoutMs?: number;
  /** How often the header and request timeouts are checked, ms (default 1000). */
  readonly timeoutCheckIntervalMs?: number;
  /**
   * Direct connections (default false; docs/gateway.md): a new client connection whose first request is
   * for an API is handed to one of its local replica processes (`attachReplicaChannel`), which serves
   * that connection's requests itself, so steady keep-alive traffic skips the proxy hop.
   */
  readonly directConnections?: boolean;
}

/** Default `replayBodyBytes`: JSON prediction bodies fit; larger uploads are not replayed. */
export const DEFAULT_REPLAY_BODY_BYTES = 256 * 1024;

/** Body of the 503 answered for an unknown path while the daemon is still routing its stored APIs. */
const RESTORING_BODY = JSON.stringify({ error: 'myelin is starting; retry' });

export interface GatewayOptions extends GatewayConfig {
  /** Every replica of every API (the orchestrator's `replicas$()`); only `ready` ones with an address take traffic. */
  readonly replicas$: Observable<readonly ReplicaInfo[]>;
}

/** One replica as the balancer sees it (for `myelin get` and tests). */
export interface GatewayUpstreamView {
  readonly id: string;
  readonly address: string;
  /** Requests in flight on it through the gateway. */
  readonly outstanding: number;
  /** Client connections handed to it (direct connections) and not known to be closed. */
  readonly direct: number;
  /** Attempts sent to it since it became ready (including refused connections). */
  readonly attempts: number;
  /** True while it is at the back of the queue after a refused connection. */
  readonly ejected: boolean;
}

/** Who may call a route: `apiKeys` (from the API's `networking.api_keys` secret) are required when given. */
export interface RouteAccess {
  readonly apiKeys?: readonly string[];
}

interface ApiEntry {
  readonly spec: GatewayApiSpec;
  readonly ctx: ForwardContext;
  /** Required keys (`networking.api_keys`); null: open. */
  readonly keys: ApiKeyCheck | null;
}

interface PortListener {
  /** The `networking.localPort` this listener serves; `null` for the shared one. */
  readonly localPort: number | null;
  readonly server: Server;
  /**
   * With direct connections, what listens: it accepts each connection paused, reads its first bytes and
   * hands it to a replica or to `server` (which then never listens itself).
   */
  front: NetServer | null;
  /** Exact request path (no query) → API. */
  routes: Map<string, ApiEntry>;
  /** Pre-rendered 404 body listing the endpoints of this port. */
  notFoundBody: string;
}

const HEALTH_BODY = JSON.stringify({ status: 'ok' });

/** A connection sent over a replica's channel, until Node calls back (its handle went, or could not). */
interface PendingHandOff {
  readonly socket: Socket;
  /** The socket's libuv handle: Node takes it off the socket when it sends it, and keeps it open until the replica acknowledges. */
  readonly handle: { close?: () => void } | null;
  readonly chunk: Buffer;
  readonly listener: PortListener;
  readonly server: unknown;
}

/** A local replica process's IPC channel and what it last reported about its direct connections. */
interface ChannelRecord {
  readonly channel: DirectChannel;
  /** Connections handed to it and not reported closed, and the requests in flight on them; its `Upstream`s read the same object. */
  readonly counts: DirectCounts;
  /** The stats `inFlight` was added to (undefined before the first report). */
  stats: ApiRequestStats | undefined;
  readonly pending: Set<PendingHandOff>;
  /**
   * The handle of the last connection sent: Node keeps it open until the replica acknowledges it (one
   * handle at a time, so every earlier one was acknowledged and closed), and never closes it if the
   * channel goes first.
   */
  lastSent: PendingHandOff['handle'];
}

/**
 * The HTTP gateway in front of every API's replicas (raw `node:http` on both sides).
 *
 * Listens on the shared port (default 8888) and on each distinct non-default `networking.localPort`,
 * opening and closing those listeners as APIs come and go. A request whose path equals an API's
 * `networking.endpoint` (exact match, query string aside) is forwarded to one of the API's ready
 * replicas, least outstanding requests first with round-robin ties: POST goes to the replica's
 * `/predict`, GET and HEAD to `/` (the replica's summary), query string, headers and body unchanged and
 * streamed. On an API's own port, `/` also reaches it when it is the only API there (Cortex local mode).
 *
 * A TrafficSplitter's endpoint (`upsertSplitter`, shared port only) sends each request to one of its
 * backend APIs by smooth weighted round robin over those with a ready replica (traffic-splitter.ts).
 * A route with API keys (`networking.api_keys`) answers 401 to a request without one of them.
 *
 * Status codes of its own: 401 missing or wrong API key, 404 unknown path (JSON listing the endpoints; 503 instead while `restoring`),
 * 405 other methods, 413 a body over `networking.maxBodyBytes` (declared, or counted as a chunked body
 * streams), 408 a request not fully received within `requestTimeoutMs`, 503 no ready replica / every replica at
 * `max_replica_concurrency` / no replica accepted the connection (all with `Retry-After: 1`), 502 a
 * replica failed after the request was sent. `GET /healthz` answers 200 unless an API owns that path.
 *
 * Route changes (`upsertApi`, `removeApi`, `setRoutes`) are serialized; they resolve once the
 * listeners they need are open. Replica changes from `replicas$` apply synchronously on emission: a
 * replica that leaves the ready set gets no further requests while those it has finish.
 */
export class Gateway {
  private readonly log: Logger;
  private readonly host: string;
  private readonly port: number;
  private readonly sharedLocalPort: number;
  private readonly connectTimeoutMs: number;
  private readonly ejectMs: number;
  private readonly closeGraceMs: number;
  private readonly agentOptions: UpstreamAgentOptions;
  private readonly replayBodyBytes: number;
  private readonly headersTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly keepAliveTimeoutMs: number;
  private readonly timeoutCheckIntervalMs: number;
  private readonly directConnections: boolean;
  /** Bumped on every route change; a handed connection carries the one it was routed with (RevokeMessage). */
  private routeGeneration = 1;
  /** IPC channels of local replica processes, by replica id (direct connections). */
  private readonly channels = new Map<string, ChannelRecord>();
  /** Set while the daemon restores its stored APIs: an unknown path is 503, not 404 (its API may be next). */
  private restoring = false;
  private readonly replicas$: Observable<readonly ReplicaInfo[]>;

  private readonly apis = new Map<string, ApiEntry>();
  /** Routed TrafficSplitters by name (with the keys they were given), and by endpoint (shared port only). */
  private readonly splitters = new Map<string, { readonly route: TrafficSplitterRoute; readonly apiKeys?: readonly string[] }>();
  private readonly splitRoutes = new Map<string, TrafficSplitterRoute>();
  private readonly pools = new Map<string, UpstreamPool>();
  private readonly statsByApi = new Map<string, ApiRequestStats>();
  private shared: PortListener | null = null;
  private readonly dedicated = new Map<number, PortListener>();
  private subscription: Subscription | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  /** Listeners of removed ports still finishing their in-flight requests. */
  private readonly closing = new Set<Promise<void>>();
  private closed = false;
  /** Prometheus series read from `statsByApi` and the pools at scrape time (`metrics()`). */
  private readonly prometheus = new GatewayMetrics(() => this.metricsEntries());
  /** Held requests of the APIs that may scale to zero, and who hears about them (the daemon). */
  private readonly holds = new Map<string, ColdStartHold>();
  private coldStart: ColdStartListener | undefined;
  private readonly v2 = new GatewayProtocolV2((api) => this.pools.get(api)?.upstreams().length ?? 0, () => this.restoring);

  constructor(options: GatewayOptions, log: Logger) {
    this.log = log.child({ component: 'gateway/gateway' });
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? DEFAULT_GATEWAY_PORT;
    this.sharedLocalPort = options.sharedLocalPort ?? DEFAULT_GATEWAY_PORT;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.ejectMs = options.ejectMs ?? 2000;
    this.closeGraceMs = options.closeGraceMs ?? 10_000;
    this.agentOptions = { ...DEFAULT_AGENT_OPTIONS, ...options.agent };
    this.replayBodyBytes = options.replayBodyBytes ?? DEFAULT_REPLAY_BODY_BYTES;
    this.headersTimeoutMs = options.headersTimeoutMs ?? 10_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
    this.keepAliveTimeoutMs = options.keepAliveTimeoutMs ?? 5000;
    this.timeoutCheckIntervalMs = options.timeoutCheckIntervalMs ?? 1000;
    this.directConnections = options.directConnections === true;
    this.replicas$ = options.replicas$;
  }

  /** Opens the shared port and starts following `replicas$`. Throws `EngineError` `ENG_GATEWAY_LISTEN` when the port is taken. */
  async start(): Promise<void> {
    if (this.shared !== null) return;
    const listener = this.createListener(null);
    await this.listen(listener, this.port);
    this.shared = listener;
    this.rebuildRoutes();
    this.subscription = this.replicas$.subscribe({
      next: (list) => this.onReplicas(list),
      error: (err: unknown) => this.log.error({ err }, 'replica stream failed; routing frozen on the last list'),
    });
    this.log.info({ host: this.host, port: this.sharedPort() }, 'gateway listening');
  }

  /**
   * While `true`, a request for a path no routed API owns is answered 503 `myelin is starting; retry`
   * with `Retry-After: 1` instead of 404: the daemon sets it before the gateway takes traffic and clears
   * it once every stored API is routed again (a restart), so clients of a known API never see a 404.
   */
  setRestoring(restoring: boolean): void {
    if (this.restoring !== restoring) this.log.info({ restoring }, restoring ? 'gateway restoring routes' : 'gateway routes restored');
    this.restoring = restoring;
  }

  /**
   * Who is told about requests held for an API with `min_replicas: 0` and no ready replica: `poke`
   * (ask its autoscaler for capacity now) and `sample` (the held count as in-flight load). Set by the
   * daemon; without one, requests are still held and released, but nothing starts a replica.
   */
  setColdStartListener(listener: ColdStartListener | undefined): void {
    this.coldStart = listener;
  }

  /** The port the shared listener is bound to (useful with `port: 0`). Throws before `start()`. */
  sharedPort(): number {
    if (this.shared === null) throw new EngineError('ENG_GATEWAY_NOT_STARTED', 'the gateway is not started');
    return ((this.shared.front ?? this.shared.server).address() as AddressInfo).port;
  }

  /** Every port the gateway listens on now: the shared one first, then the APIs' own ports, ascending. */
  ports(): readonly number[] {
    const out: number[] = [];
    if (this.shared !== null) out.push(this.sharedPort());
    for (const p of [...this.dedicated.keys()].sort((a, b) => a - b)) out.push(p);
    return out;
  }

  /**
   * Routes `spec.networking.endpoint` to the API's replicas (creating or updating the route) and opens
   * its own port when needed. Throws `EngineError` `ENG_GATEWAY_ENDPOINT_TAKEN` when another API has
   * that endpoint, `ENG_GATEWAY_LISTEN` when its port cannot be opened (the previous route stays).
   */
  upsertApi(spec: GatewayApiSpec, access?: RouteAccess): Promise<void> {
    return this.serialize(() => this.doUpsert(spec, undefined, access));
  }

  /** Stops routing to the API and closes its own port if no other API uses it. Unknown names are ignored. */
  removeApi(name: string): Promise<void> {
    return this.serialize(async () => {
      if (!this.apis.delete(name)) return;
      this.statsByApi.delete(name);
      this.closeHold(name);
      this.rebuildRoutes();
      this.closeUnusedListeners();
      this.log.info({ api: name }, 'api unrouted');
    });
  }

  /**
   * Makes the routed APIs exactly `specs` (removing the others), without API keys; APIs may swap endpoints. Throws
   * `ENG_GATEWAY_ENDPOINT_TAKEN` before changing anything when two specs share an endpoint; otherwise
   * stops at the first API whose port cannot be opened.
   */
  setRoutes(specs: readonly GatewayApiSpec[]): Promise<void> {
    return this.serialize(async () => {
      const byEndpoint = new Map<string, string>();
      for (const spec of specs) {
        const other = byEndpoint.get(spec.networking.endpoint);
        if (other !== undefined && other !== spec.name) {
          throw new EngineError(
            'ENG_GATEWAY_ENDPOINT_TAKEN',
            `endpoint ${spec.networking.endpoint} of api ${spec.name} is already used by api ${other}`,
          );
        }
        byEndpoint.set(spec.networking.endpoint, spec.name);
      }
      const keep = new Set(specs.map((s) => s.name));
      let removed = false;
      for (const name of [...this.apis.keys()]) {
        if (!keep.has(name)) {
          this.apis.delete(name);
          this.statsByApi.delete(name);
          this.closeHold(name);
          removed = true;
        }
      }
      if (removed) this.rebuildRoutes();
      // The specs were checked against each other above: a clash with a kept API is a swap in progress.
      for (const spec of specs) await this.doUpsert(spec, keep);
      this.closeUnusedListeners();
    });
  }

  /**
   * Routes a TrafficSplitter's endpoint on the shared port: each request goes to one of its backend
   * APIs (routed with `upsertApi`) by smooth weighted round robin over the backends with a ready
   * replica (traffic-splitter.ts), and is then handled as a request to that API. `access.apiKeys` are
   * the splitter's own keys; a backend's keys do not apply through it. Re-routing with the same
   * weights and keys keeps the counters. Throws `ENG_GATEWAY_ENDPOINT_TAKEN` when an API or another
   * splitter has the endpoint.
   */
  upsertSplitter(spec: GatewaySplitterSpec, access?: RouteAccess): Promise<void> {
    return this.serialize(async () => {
      const endpoint = spec.networking.endpoint;
      for (const [name, other] of this.apis) {
        if (other.spec.networking.endpoint === endpoint) {
          throw new EngineError('ENG_GATEWAY_ENDPOINT_TAKEN', `endpoint ${endpoint} of traffic splitter ${spec.name} is already used by api ${name}`);
        }
      }
      for (const [name, other] of this.splitters) {
        if (name !== spec.name && other.route.endpoint === endpoint) {
          throw new EngineError('ENG_GATEWAY_ENDPOINT_TAKEN', `endpoint ${endpoint} of traffic splitter ${spec.name} is already used by traffic splitter ${name}`);
        }
      }
      const cur = this.splitters.get(spec.name);
      if (cur !== undefined && cur.route.sameAs(spec, access?.apiKeys, cur.apiKeys)) return;
      const keys = access?.apiKeys !== undefined && access.apiKeys.length > 0 ? new ApiKeyCheck(access.apiKeys) : null;
      if (cur !== undefined) this.splitRoutes.delete(cur.route.endpoint);
      const route = new TrafficSplitterRoute(spec, keys);
      this.splitters.set(spec.name, { route, ...(access?.apiKeys !== undefined ? { apiKeys: [...access.apiKeys] } : {}) });
      this.splitRoutes.set(endpoint, route);
      this.log.info({ splitter: spec.name, endpoint, backends: spec.apis.map((b) => `${b.name}:${b.weight}`).join(' ') }, 'traffic splitter routed');
    });
  }

  /** Stops routing a TrafficSplitter's endpoint. Unknown names are ignored. */
  removeSplitter(name: string): Promise<void> {
    return this.serialize(async () => {
      const cur = this.splitters.get(name);
      if (cur === undefined) return;
      this.splitters.delete(name);
      this.splitRoutes.delete(cur.route.endpoint);
      this.log.info({ splitter: name }, 'traffic splitter unrouted');
    });
  }

  /** Requests a routed TrafficSplitter sent to each backend, and which backends are ready; undefined when not routed. */
  splitterStats(name: string): SplitterStats | undefined {
    return this.splitters.get(name)?.route.stats(this.isApiReady);
  }

  /** An API with at least one ready replica taking requests (what a splitter sends requests to). */
  private readonly isApiReady = (api: string): boolean => (this.pools.get(api)?.upstreams().length ?? 0) > 0;

  /** Request counters of a routed API; undefined when the API is not routed. */
  stats(api: string): GatewayApiStats | undefined {
    const s = this.statsByApi.get(api);
    if (s === undefined) return undefined;
    return s.snapshot(api, this.pools.get(api)?.upstreams().length ?? 0);
  }

  /**
   * The gateway's Prometheus series as text exposition (format 0.0.4, ending in a newline): requests by
   * status class, retries by reason, failed upstream attempts by kind, its own 503s by reason, in flight
   * and ready upstreams, each labelled by `api` (names in docs/gateway.md). The daemon serves it on the
   * control API's `GET /metrics`, after its own series.
   */
  metrics(): Promise<string> {
    return this.prometheus.text();
  }

  private *metricsEntries(): Iterable<GatewayMetricsEntry> {
    for (const [api, stats] of this.statsByApi) yield { api, stats, readyUpstreams: this.pools.get(api)?.upstreams().length ?? 0 };
  }

  /**
   * The IPC channel of local replica process `replicaId` (direct connections; the daemon calls it for
   * every replica it starts). Connections are handed to a replica only while it is attached and ready;
   * its reports add to its API's stats. Returns the detach function (call it when the process exits).
   */
  attachReplicaChannel(replicaId: string, channel: DirectChannel): () => void {
    const record: ChannelRecord = { channel, counts: new DirectCounts(), stats: undefined, pending: new Set(), lastSent: null };
    const onMessage = (m: unknown): void => {
      if (isDirectStatsMessage(m)) this.onDirectStats(record, m);
    };
    channel.on('message', onMessage);
    this.channels.set(replicaId, record);
    for (const pool of this.pools.values()) for (const u of pool.upstreams()) if (u.id === replicaId) u.directCounts = record.counts;
    let detached = false;
    return () => {
      if (detached) return;
      detached = true;
      channel.off('message', onMessage);
      if (this.channels.get(replicaId) === record) this.channels.delete(replicaId);
      if (record.stats !== undefined) record.stats.directInFlight -= record.counts.inFlight;
      record.stats = undefined;
      record.counts.inFlight = 0;
      record.counts.direct = 0;
      // Node sends one handle at a time and never calls back for those still queued when the channel
      // goes: serve those here (their sockets never left), and let go of the one in transit.
      for (const p of record.pending) this.takeBack(p);
      record.pending.clear();
      closeHandle(record.lastSent);
      record.lastSent = null;
    };
  }

  /** A hand-over that did not happen (the channel went): the connection is served here, as if it had never been handed. */
  private takeBack(p: PendingHandOff): void {
    const handle = (p.socket as unknown as { _handle?: unknown })._handle;
    if (handle === null || handle === undefined || p.socket.destroyed) {
      // In transit when the replica went: no acknowledgement will ever close Node's copy; close it.
      closeHandle(p.handle);
      p.socket.destroy();
      return;
    }
    (p.socket as unknown as { server: unknown }).server = p.server;
    p.socket.unshift(p.chunk);
    p.listener.server.emit('connection', p.socket);
    p.socket.resume();
  }

  /** A replica's report on its direct connections: its answers count as the API's, its closed connections free their slots. */
  private onDirectStats(record: ChannelRecord, m: DirectStatsMessage): void {
    const counts = record.counts;
    // Subtract the last reported in-flight from the stats it was added to (the API may have been re-routed since).
    if (record.stats !== undefined) record.stats.directInFlight -= counts.inFlight;
    const stats = this.statsByApi.get(m.api);
    record.stats = stats;
    counts.inFlight = m.inFlight;
    counts.direct = Math.max(0, counts.direct - m.closed);
    if (stats !== undefined) {
      stats.s2xx += m.s2xx;
      stats.s3xx += m.s3xx;
      stats.s4xx += m.s4xx;
      stats.s5xx += m.s5xx;
      stats.latencyMsSum += m.latencyMsSum;
      stats.aborted += m.aborted;
      stats.directInFlight += m.inFlight;
    }
  }

  /** The replicas of an API that take new requests now, with their load. */
  upstreams(api: string): readonly GatewayUpstreamView[] {
    const pool = this.pools.get(api);
    if (pool === undefined) return [];
    const now = performance.now();
    return pool.upstreams().map((u) => ({
      id: u.id,
      address: u.key,
      outstanding: u.outstanding,
      direct: u.direct,
      attempts: u.attempts,
      ejected: u.ejectedUntilMs > now,
    }));
  }

  /**
   * Stops accepting connections, lets in-flight requests finish for up to `closeGraceMs`, then cuts the
   * remaining connections and closes every replica connection pool.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.catch(() => undefined);
    // Held requests will find no replica any more: answered now (503) rather than at their hold_timeout.
    for (const api of [...this.holds.keys()]) this.closeHold(api);
    this.subscription?.unsubscribe();
    this.subscription = null;
    const listeners = [...this.dedicated.values()];
    if (this.shared !== null) listeners.push(this.shared);
    this.dedicated.clear();
    this.shared = null;
    await Promise.all([...listeners.map((l) => this.closeListener(l)), ...this.closing]);
    for (const pool of this.pools.values()) {
      for (const u of pool.upstreams()) u.agent.destroy();
      pool.clear();
    }
    this.pools.clear();
    this.log.info({}, 'gateway closed');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private serialize(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(() => {
      if (this.closed) throw new EngineError('ENG_GATEWAY_CLOSED', 'the gateway is closed');
      return task();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async doUpsert(spec: GatewayApiSpec, alsoChanging?: ReadonlySet<string>, access?: RouteAccess): Promise<void> {
    const endpoint = spec.networking.endpoint;
    for (const [name, other] of this.apis) {
      if (name !== spec.name && other.spec.networking.endpoint === endpoint && !alsoChanging?.has(name)) {
        throw new EngineError(
          'ENG_GATEWAY_ENDPOINT_TAKEN',
          `endpoint ${endpoint} of api ${spec.name} is already used by api ${name}`,
        );
      }
    }
    const splitter = this.splitRoutes.get(endpoint);
    if (splitter !== undefined) {
      throw new EngineError('ENG_GATEWAY_ENDPOINT_TAKEN', `endpoint ${endpoint} of api ${spec.name} is already used by traffic splitter ${splitter.name}`);
    }
    const localPort = spec.networking.localPort;
    if (this.isDedicated(localPort) && !this.dedicated.has(localPort)) {
      const listener = this.createListener(localPort);
      await this.listen(listener, localPort);
      this.dedicated.set(localPort, listener);
      this.log.info({ api: spec.name, port: localPort }, 'api port opened');
    }
    let stats = this.statsByApi.get(spec.name);
    if (stats === undefined) {
      stats = new ApiRequestStats();
      this.statsByApi.set(spec.name, stats);
    }
    const pool = this.poolFor(spec.name);
    pool.setMaxConcurrency(spec.autoscaling.maxReplicaConcurrency);
    this.apis.set(spec.name, {
      spec,
      ctx: {
        api: spec.name,
        pool,
        stats,
        connectTimeoutMs: this.connectTimeoutMs,
        ejectMs: this.ejectMs,
        maxBodyBytes: spec.networking.maxBodyBytes,
        replayBodyBytes: this.replayBodyBytes,
        ...this.holdFor(spec),
        log: this.log,
      },
      keys: access?.apiKeys !== undefined && access.apiKeys.length > 0 ? new ApiKeyCheck(access.apiKeys) : null,
    });
    this.rebuildRoutes();
    this.closeUnusedListeners();
    this.log.info({ api: spec.name, endpoint, port: localPort }, 'api routed');
  }

  /** The hold of an API that may scale to zero (`{ hold }` for its context), created or resized; `{}` otherwise. */
  private holdFor(spec: GatewayApiSpec): { hold?: ColdStartHold } {
    const a = spec.autoscaling;
    if (a.minReplicas !== 0) {
      this.closeHold(spec.name);
      return {};
    }
    const maxHeld = a.maxHeldRequests ?? DEFAULT_MAX_HELD_REQUESTS;
    const timeoutMs = a.holdTimeoutMs ?? DEFAULT_HOLD_TIMEOUT_MS;
    let hold = this.holds.get(spec.name);
    // One hold per API for as long as it may scale to zero: requests held under the previous route stay in it.
    if (hold !== undefined) hold.configure(maxHeld, timeoutMs);
    else {
      const api = spec.name;
      hold = new ColdStartHold({
        api,
        maxHeld,
        timeoutMs,
        listener: () => this.coldStart,
        canTake: () => this.pools.get(api)?.hasCapacity(performance.now()) ?? false,
        log: this.log,
      });
      this.holds.set(spec.name, hold);
    }
    return { hold };
  }

  /** Stops holding for an API (removed, or no longer `min_replicas: 0`): what it held is retried as any request (served, or 503). */
  private closeHold(api: string): void {
    const hold = this.holds.get(api);
    if (hold === undefined) return;
    this.holds.delete(api);
    hold.close();
  }

  private isDedicated(localPort: number): boolean {
    return localPort !== this.sharedLocalPort && localPort !== this.port;
  }

  private poolFor(api: string): UpstreamPool {
    let pool = this.pools.get(api);
    if (pool === undefined) {
      pool = new UpstreamPool(api, this.agentOptions);
      this.pools.set(api, pool);
    }
    return pool;
  }

  private onReplicas(list: readonly ReplicaInfo[]): void {
    const byApi = new Map<string, ReplicaInfo[]>();
    for (const r of list) {
      if (r.state !== 'ready' || r.address === undefined) continue;
      let arr = byApi.get(r.api);
      if (arr === undefined) byApi.set(r.api, (arr = []));
      arr.push(r);
    }
    for (const [api, pool] of this.pools) {
      if (byApi.has(api)) continue;
      pool.update([]);
      if (!this.apis.has(api)) this.pools.delete(api);
    }
    for (const [api, replicas] of byApi) {
      const pool = this.poolFor(api);
      const before = this.directConnections ? new Set(pool.upstreams().map((u) => u.id)) : null;
      pool.update(replicas);
      // A replica back in the ready set is a new Upstream: it reads the counts of the connections it still holds.
      if (this.channels.size > 0) {
        for (const u of pool.upstreams()) {
          const r = this.channels.get(u.id);
          if (r !== undefined) u.directCounts = r.counts;
        }
      }
      if (before !== null && pool.upstreams().some((u) => !before.has(u.id))) this.rebalanceDirect(pool);
      // A replica of an API that holds requests is ready: release them in order, as many as it takes (cold-start-hold.ts).
      this.holds.get(api)?.drain();
    }
  }

  /**
   * A replica joined an API that has direct connections: each replica holding more than its share
   * (total ÷ ready replicas, rounded up) is asked to let the others go after their next response,
   * so their clients reconnect and the new replica takes its part at once, not only new clients.
   */
  private rebalanceDirect(pool: UpstreamPool): void {
    const ups = pool.upstreams();
    let total = 0;
    for (const u of ups) total += u.direct;
    if (total === 0) return;
    const keep = Math.ceil(total / ups.length);
    for (const u of ups) {
      if (u.direct <= keep) continue;
      const record = this.channels.get(u.id);
      if (record === undefined) continue;
      const message: ShedMessage = { type: DIRECT_MESSAGES.shed, keep };
      try {
        record.channel.send(message, undefined, undefined, () => {});
      } catch (err) {
        this.log.debug({ err, replica: u.id }, 'shed request not sent');
      }
    }
  }

  /**
   * Routes are about to change: every replica is told that connections handed with the routes so far
   * no longer hold (keys added, an endpoint moved, an API removed, a port gaining a second API), so
   * their next request comes back here and is routed anew.
   */
  private revokeDirectRoutes(): void {
    this.routeGeneration++;
    const message: RevokeMessage = { type: DIRECT_MESSAGES.revoke, generation: this.routeGeneration };
    for (const [id, record] of this.channels) {
      if (record.counts.direct === 0 && record.pending.size === 0) continue;
      try {
        record.channel.send(message, undefined, undefined, () => {});
      } catch (err) {
        this.log.debug({ err, replica: id }, 'route revocation not sent');
      }
    }
  }

  /** Recomputes every listener's path table from the routed APIs. */
  private rebuildRoutes(): void {
    if (this.directConnections) this.revokeDirectRoutes();
    const sharedRoutes = new Map<string, ApiEntry>();
    const perPort = new Map<number, Map<string, ApiEntry>>();
    for (const entry of this.apis.values()) {
      const { endpoint, localPort } = entry.spec.networking;
      sharedRoutes.set(endpoint, entry);
      if (this.isDedicated(localPort)) {
        let m = perPort.get(localPort);
        if (m === undefined) perPort.set(localPort, (m = new Map()));
        m.set(endpoint, entry);
      }
    }
    if (this.shared !== null) setRoutes(this.shared, sharedRoutes);
    for (const [port, listener] of this.dedicated) {
      const routes = perPort.get(port) ?? new Map<string, ApiEntry>();
      // Cortex local mode served an API at its port's root; keep that when the port has a single API.
      if (routes.size === 1 && !routes.has('/')) routes.set('/', [...routes.values()][0]);
      setRoutes(listener, routes);
    }
  }

  /** Stops accepting on ports no API uses any more; their in-flight requests finish in the background. */
  private closeUnusedListeners(): void {
    const used = new Set<number>();
    for (const entry of this.apis.values()) used.add(entry.spec.networking.localPort);
    for (const [port, listener] of this.dedicated) {
      if (used.has(port)) continue;
      this.dedicated.delete(port);
      this.log.info({ port }, 'api port closed');
      const done = this.closeListener(listener).finally(() => this.closing.delete(done));
      this.closing.add(done);
    }
  }

  private createListener(localPort: number | null): PortListener {
    const listener: PortListener = {
      localPort,
      front: null,
      server: createServer({
        // Node requires headersTimeout <= requestTimeout when the latter is on.
        headersTimeout: this.requestTimeoutMs > 0 ? Math.min(this.headersTimeoutMs, this.requestTimeoutMs) : this.headersTimeoutMs,
        requestTimeout: this.requestTimeoutMs,
        keepAliveTimeout: this.keepAliveTimeoutMs,
        connectionsCheckingInterval: this.timeoutCheckIntervalMs,
      }),
      routes: new Map(),
      notFoundBody: JSON.stringify({ error: 'not found', endpoints: [] }),
    };
    listener.server.on('request', (req: IncomingMessage, res: ServerResponse) => this.handle(listener, req, res));
    if (this.directConnections) {
      // Node starts tracking an http server's connections (its timeouts, closeIdleConnections) when it
      // starts listening; with direct connections the front listens and hands it connections instead.
      listener.server.emit('listening');
      listener.front = createNetServer({ pauseOnConnect: true, noDelay: true }, (socket) => this.onConnection(listener, socket));
    }
    return listener;
  }

  /**
   * Direct connections: a new client connection, accepted paused. Its first bytes decide: a request
   * line for an API that can take direct connections hands the connection to one of its replicas;
   * anything else (another path, a partial line, a key-protected API, a replica sending a request
   * back) is served by this port's http server, the bytes read put back first.
   */
  private onConnection(listener: PortListener, socket: Socket): void {
    const timer = setTimeout(() => socket.destroy(), this.headersTimeoutMs);
    timer.unref();
    const onError = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    socket.on('error', onError);
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      stopReading(socket);
      socket.off('error', onError);
      socket.off('end', onError);
      if (this.handOff(listener, socket, chunk)) return;
      socket.unshift(chunk);
      listener.server.emit('connection', socket);
      socket.resume();
    });
    socket.once('end', onError);
    socket.resume();
  }

  /** Sends `socket` (first bytes `chunk`) to a replica of the API its first request is for; false when it stays here. */
  private handOff(listener: PortListener, socket: Socket, chunk: Buffer): boolean {
    const path = directRequestPath(chunk);
    if (path === null) return false;
    const entry = listener.routes.get(path);
    // A route with API keys, or one that may hold requests at zero replicas, keeps every request at the gateway.
    if (entry === undefined || entry.keys !== null || entry.ctx.hold !== undefined) return false;
    const api = entry.spec.name;
    const up = this.pools.get(api)?.pickForConnection(performance.now());
    if (up === undefined) return false;
    const record = this.channels.get(up.id);
    if (record === undefined || record.channel.connected === false) return false;
    const paths = [entry.spec.networking.endpoint];
    if (entry.spec.networking.endpoint !== '/' && listener.routes.get('/') === entry) paths.push('/');
    const route: DirectRoute = {
      api,
      paths,
      back: { host: socket.localAddress ?? '127.0.0.1', port: socket.localPort ?? 0 },
      keepAliveTimeoutMs: this.keepAliveTimeoutMs,
      generation: this.routeGeneration,
    };
    const message: ConnectionMessage = { type: DIRECT_MESSAGES.connection, head: chunk.toString('latin1'), route };
    // Not tracked by the front as a connection sent to a worker (Node's cluster bookkeeping): the
    // socket object is destroyed once its handle is sent, which ends it here.
    const pending: PendingHandOff = {
      socket,
      handle: (socket as unknown as { _handle: PendingHandOff['handle'] })._handle,
      chunk,
      listener,
      server: (socket as unknown as { server: unknown }).server,
    };
    (socket as unknown as { server: unknown }).server = null;
    const counts = record.counts;
    counts.direct++;
    up.attempts++;
    record.pending.add(pending);
    // While queued behind an unacknowledged hand-over the socket still reads: a client that resets or
    // leaves then must not crash the daemon, and its hand-over goes out without a handle (not counted).
    let goneWhileQueued = false;
    const onQueuedGone = (): void => {
      if (record.pending.has(pending)) goneWhileQueued = true;
    };
    socket.on('error', onQueuedGone);
    socket.once('close', onQueuedGone);
    const failed = (err: unknown): void => {
      counts.direct = Math.max(0, counts.direct - 1);
      this.log.warn({ err, replica: up.id }, 'client connection could not be handed to the replica; closed');
    };
    try {
      record.channel.send(message, socket, undefined, (err) => {
        if (!record.pending.delete(pending)) return;
        if (err) failed(err);
        else if (goneWhileQueued) counts.direct = Math.max(0, counts.direct - 1);
        else record.lastSent = pending.handle;
        socket.destroy();
      });
    } catch (err) {
      record.pending.delete(pending);
      failed(err);
      socket.destroy();
    }
    return true;
  }

  private listen(listener: PortListener, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = listener.front ?? listener.server;
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(
          new EngineError('ENG_GATEWAY_LISTEN', `gateway cannot listen on ${this.host}:${port} (${err.code ?? err.message})`, {
            cause: err,
          }),
        );
      };
      server.once('error', onError);
      server.listen(port, this.host, () => {
        server.off('error', onError);
        server.on('error', (err: unknown) => this.log.error({ err, port }, 'gateway listener failed'));
        resolve();
      });
    });
  }

  private closeListener(listener: PortListener): Promise<void> {
    const front = listener.front;
    if (front !== null) {
      return new Promise((resolve) => {
        if (!front.listening) {
          resolve();
          return;
        }
        const timer = setTimeout(() => listener.server.closeAllConnections(), this.closeGraceMs);
        timer.unref();
        // The front's count covers the connections it passed to the http server (handed ones left it).
        front.close(() => {
          clearTimeout(timer);
          resolve();
        });
        listener.server.close();
      });
    }
    return new Promise((resolve) => {
      const server = listener.server;
      if (!server.listening) {
        resolve();
        return;
      }
      const timer = setTimeout(() => server.closeAllConnections(), this.closeGraceMs);
      timer.unref();
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      server.closeIdleConnections();
    });
  }

  /**
   * Where a request to a TrafficSplitter's endpoint goes: answers a CORS preflight and a request without
   * the splitter's key itself (null), else picks the backend and returns its entry, with the backend's
   * own keys lifted (the splitter's apply). 503 when the picked backend is not routed here.
   */
  private splitEntry(split: TrafficSplitterRoute, req: IncomingMessage, res: ServerResponse): ApiEntry | null {
    const method = req.method;
    if (method === 'OPTIONS') {
      answerPreflight(req, res);
      return null;
    }
    if (method !== 'POST' && method !== 'GET' && method !== 'HEAD') {
      // Answered before a backend is picked: a refused request takes no turn of the rotation.
      res.setHeader('allow', 'GET, HEAD, POST, OPTIONS');
      sendJsonError(res, 405, `method ${method ?? ''} not allowed on ${split.endpoint}`);
      return null;
    }
    if (split.keys !== null) {
      const outcome = split.keys.check(req.rawHeaders);
      if (outcome !== 'ok') {
        split.unauthorized++;
        sendUnauthorized(res, split.name, outcome);
        return null;
      }
    }
    const name = split.pick(this.isApiReady);
    const target = name === undefined ? undefined : this.apis.get(name);
    if (target === undefined) {
      sendJsonError(res, 503, `traffic splitter ${split.name}: its backend ${name ?? '(none with a weight)'} is not being served`, 1);
      return null;
    }
    return target.keys === null ? target : { spec: target.spec, ctx: target.ctx, keys: null };
  }

  /** The request handler: route by exact path, then forward; the hot path of the data plane. */
  private handle(listener: PortListener, req: IncomingMessage, res: ServerResponse): void {
    const startMs = performance.now();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    let entry = listener.routes.get(path);
    /** A key was checked on this request's route (the API's or its splitter's): it is not passed on. */
    let keyChecked = false;
    if (entry === undefined && listener.localPort === null && this.splitRoutes.size > 0) {
      const split = this.splitRoutes.get(path);
      if (split !== undefined) {
        const backend = this.splitEntry(split, req, res);
        if (backend === null) return;
        entry = backend;
        keyChecked = split.keys !== null;
      }
    }
    if (entry === undefined) {
      // Open Inference Protocol v2 (protocol-v2-routes.ts): health and metadata here, model routes to a replica.
      if (path.startsWith('/v2') && this.v2.handle(listener.routes.values(), req, res, path, q === -1 ? '' : url.slice(q), startMs)) return;
      if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': HEALTH_BODY.length });
        res.end(HEALTH_BODY);
        return;
      }
      if (this.restoring) {
        res.writeHead(503, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(RESTORING_BODY),
          'retry-after': '1',
        });
        res.end(RESTORING_BODY);
        return;
      }
      res.writeHead(404, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(listener.notFoundBody),
      });
      res.end(listener.notFoundBody);
      return;
    }
    const query = q === -1 ? '' : url.slice(q);
    const method = req.method;
    let upstreamPath: string;
    if (method === 'POST') {
      upstreamPath = query === '' ? '/predict' : `/predict${query}`;
    } else if (method === 'GET' || method === 'HEAD') {
      upstreamPath = query === '' ? '/' : `/${query}`;
    } else if (method === 'OPTIONS') {
      answerPreflight(req, res);
      return;
    } else {
      res.setHeader('allow', 'GET, HEAD, POST, OPTIONS');
      sendJsonError(res, 405, `method ${method ?? ''} not allowed on ${path}`);
      return;
    }
    if (entry.keys !== null) {
      const outcome = entry.keys.check(req.rawHeaders);
      if (outcome !== 'ok') {
        sendUnauthorized(res, entry.spec.name, outcome);
        entry.ctx.stats.record(401, performance.now() - startMs);
        return;
      }
      keyChecked = true;
    }
    // Scanned from rawHeaders: reading `req.headers` would build the lower-cased header object per request.
    const declared = declaredContentLength(req.rawHeaders);
    if (declared > entry.spec.networking.maxBodyBytes) {
      // The body is not read: close the connection instead of draining it.
      res.setHeader('connection', 'close');
      const stats = entry.ctx.stats;
      sendJsonError(res, 413, `request body of ${declared} bytes exceeds ${entry.spec.networking.maxBodyBytes} bytes`);
      stats.record(413, performance.now() - startMs);
      return;
    }
    forwardRequest(entry.ctx, req, res, upstreamPath, startMs, keyChecked);
  }
}

/** Closes a libuv handle Node may already have closed (closing twice is a no-op there). */
function closeHandle(handle: PendingHandOff['handle']): void {
  try {
    handle?.close?.();
  } catch {
    // already closed
  }
}

function setRoutes(listener: PortListener, routes: Map<string, ApiEntry>): void {
  listener.routes = routes;
  const endpoints = [...new Set([...routes.values()].map((e) => e.spec.networking.endpoint))].sort();
  listener.notFoundBody = JSON.stringify({ error: 'not found', endpoints });
}

/** CORS preflight, as Cortex's nginx answered it (204, any origin). */
function answerPreflight(req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(204, {
    'access-control-allow-origin': '*',
    'access-control-allow-methods': 'GET, POST, OPTIONS',
    'access-control-allow-headers': req.headers['access-control-request-headers'] ?? '*',
    'access-control-max-age': '86400',
  });
  res.end();
}
