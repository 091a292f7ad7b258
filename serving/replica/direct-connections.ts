import { Agent, createServer, request, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../core/ports/logger.js';
import { DIRECT_MESSAGES, VIA_REPLICA_HEADER, isConnectionMessage, isRevokeMessage, isShedMessage, type DirectRoute, type DirectStatsMessage } from './direct-connection-protocol.js';

/** A direct connection marked to close (shed, or the replica drains) is closed once it has been idle this long (ms). */
export const IDLE_CLOSE_MS = 1000;
const SWEEP_MS = 250;
/** After a direct request, a report goes out at once when the previous one is at least this old (ms). */
const REPORT_SOON_MS = 100;

const kRoute = Symbol('myelin.direct.route');
const kBusy = Symbol('myelin.direct.busy');
const kIdleSince = Symbol('myelin.direct.idleSince');
const kShed = Symbol('myelin.direct.shed');
const kStart = Symbol('myelin.direct.start');
const kOwner = Symbol('myelin.direct.owner');
const kSocket = Symbol('myelin.direct.socket');

interface DirectSocket extends Socket {
  [kRoute]: DirectRoute;
  [kBusy]: boolean;
  [kIdleSince]: number;
  [kShed]: boolean;
}

interface DirectResponse extends ServerResponse {
  [kStart]: number;
  [kOwner]: DirectConnections;
  [kSocket]: DirectSocket;
}

/** Request headers not passed on when a foreign request goes back through the gateway (hop-by-hop). */
const HOP_REQUEST = new Set(['connection', 'keep-alive', 'te', 'upgrade', 'proxy-connection', 'transfer-encoding', 'expect']);
/** Response headers not passed on (hop-by-hop; Node frames the body again). */
const HOP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'trailer']);

export interface DirectConnectionsOptions {
  /** The replica's request handler (`/predict`, `/`, health, …): a request for the API arrives rewritten to `/predict` or `/`. */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
  /** Timeouts as the replica's own listener has them (`keepAliveTimeout` comes from each connection's route). */
  readonly serverOptions: ServerOptions;
  /** The replica's answer to a malformed or timed-out request (400 / 408, then close). */
  readonly onClientError: (err: NodeJS.ErrnoException, socket: Duplex) => void;
  readonly log: Logger;
  /** Sends a report to the daemon (over IPC): every `reportIntervalMs` when something changed, and soon after a connection closes. */
  readonly report: (message: DirectStatsMessage) => void;
  readonly reportIntervalMs?: number;
  readonly now?: () => number;
}

/**
 * The replica's side of direct connections (docs/gateway.md, *Direct connections*): client connections
 * the daemon's gateway accepted and handed over, served by a second `node:http` server of the replica
 * that never listens. A request for the API's endpoint is rewritten as the gateway would forward it
 * (POST → `/predict`, other methods → `/`, query kept) and handled by the replica; a request for any
 * other path (another API, `/healthz`, a 404) is sent back through the gateway, which answers it as
 * usual. Counts what it answered and reports it to the daemon, whose gateway adds it to the API's
 * stats. A connection marked to close (`shed`, `drain`) is answered with `Connection: close` on its
 * next response, or closed once idle for `IDLE_CLOSE_MS` — never closed while a client may be writing
 * into it after a response it just got.
 */
export class DirectConnections {
  private readonly server: Server;
  private readonly sockets = new Set<DirectSocket>();
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly reportFn: (message: DirectStatsMessage) => void;
  private readonly reportTimer: NodeJS.Timeout;
  private sweeper: NodeJS.Timeout | undefined;
  private backAgent: Agent | undefined;
  private draining = false;
  /** Routes of an older generation than this were revoked by the gateway (its routes changed). */
  private revokedBelow = 0;
  private trailingReport: NodeJS.Timeout | undefined;
  private drained: (() => void) | undefined;
  private api = '';
  private s2xx = 0;
  private s3xx = 0;
  private s4xx = 0;
  private s5xx = 0;
  private latencyMsSum = 0;
  private aborted = 0;
  private closed = 0;
  private inFlight = 0;
  private changed = false;
  private flushSoon = false;
  private lastReportMs = -Infinity;

  constructor(private readonly options: DirectConnectionsOptions) {
    this.log = options.log;
    this.now = options.now ?? (() => performance.now());
    this.reportFn = options.report;
    this.server = createServer(options.serverOptions, (req, res) => this.onRequest(req, res));
    this.server.on('clientError', options.onClientError);
    // Node starts tracking connections (headers and request timeouts, idle keep-alive) when a server
    // starts listening; this one never listens, its connections arrive over IPC.
    this.server.emit('listening');
    this.reportTimer = setInterval(() => this.flushReport(), options.reportIntervalMs ?? 1000);
    this.reportTimer.unref();
  }

  /** Direct connections open now. */
  get connections(): number {
    return this.sockets.size;
  }

  /** Serves `socket` (handed over by the gateway, paused), whose first `head` bytes the gateway already read. */
  adopt(socket: Socket, head: Buffer, route: DirectRoute): void {
    const s = socket as DirectSocket;
    s[kRoute] = route.generation < this.revokedBelow ? revoked(route) : route;
    s[kBusy] = false;
    s[kIdleSince] = this.now();
    s[kShed] = this.draining || route.generation < this.revokedBelow;
    this.api = route.api;
    this.server.keepAliveTimeout = route.keepAliveTimeoutMs;
    this.sockets.add(s);
    this.changed = true;
    s.once('close', () => {
      this.sockets.delete(s);
      this.closed++;
      this.changed = true;
      // The gateway balances new connections by the open ones: tell it soon (one report per loop turn).
      this.reportSoon();
      if (this.drained !== undefined && this.sockets.size === 0) this.drained();
    });
    s.setNoDelay(true);
    if (head.length > 0) s.unshift(head);
    this.server.emit('connection', s);
    s.resume();
    if (this.draining) this.startSweeper();
  }

  /**
   * The gateway's routes changed (a deploy, an API removed, keys added): every connection handed with
   * an older route sends its next requests back through the gateway, which applies the routes as they
   * are now, and closes after its next response so that its client reconnects and is handed anew.
   */
  revoke(generation: number): void {
    if (generation <= this.revokedBelow) return;
    this.revokedBelow = generation;
    for (const s of this.sockets) {
      if (s[kRoute].generation >= generation) continue;
      s[kRoute] = revoked(s[kRoute]);
      s[kShed] = true;
    }
    this.startSweeper();
  }

  /** Keeps at most `keep` direct connections: the others close after their next response, or once idle. */
  shed(keep: number): void {
    let extra = this.sockets.size - keep;
    if (extra <= 0) return;
    for (const s of this.sockets) {
      if (extra === 0) break;
      if (s[kShed]) continue;
      s[kShed] = true;
      extra--;
    }
    this.startSweeper();
  }

  /** Closes every direct connection as above; resolves when none is left or after `graceMs`, then cuts the rest. */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    for (const s of this.sockets) s[kShed] = true;
    if (this.sockets.size > 0) {
      this.startSweeper();
      await doneOrTimeout(graceMs, (done) => (this.drained = done));
      this.drained = undefined;
    }
    this.closeAll();
  }

  /** Cuts every direct connection now and stops reporting (after one last report). */
  closeAll(): void {
    for (const s of this.sockets) s.destroy();
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    clearInterval(this.reportTimer);
    if (this.trailingReport !== undefined) clearTimeout(this.trailingReport);
    this.flushReport();
    this.backAgent?.destroy();
    this.server.close();
  }

  private startSweeper(): void {
    if (this.sweeper !== undefined) return;
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  private sweep(): void {
    const now = this.now();
    let marked = 0;
    for (const s of this.sockets) {
      if (!s[kShed]) continue;
      marked++;
      if (!s[kBusy] && !s.writableEnded && now - s[kIdleSince] >= IDLE_CLOSE_MS) s.end();
    }
    if (marked === 0 && !this.draining && this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** Reports in the next loop turn (coalesced). */
  private reportSoon(): void {
    if (this.flushSoon) return;
    this.flushSoon = true;
    setImmediate(() => {
      this.flushSoon = false;
      this.flushReport();
    });
  }

  /** A connection handed over that this replica will not serve (not ready, or gone): closed and reported, so the gateway frees its slot. */
  reject(socket: Socket, api: string): void {
    socket.destroy();
    this.api = api;
    this.closed++;
    this.changed = true;
    this.reportSoon();
  }

  private flushReport(): void {
    if (!this.changed) return;
    this.changed = false;
    this.lastReportMs = this.now();
    const message: DirectStatsMessage = {
      type: DIRECT_MESSAGES.stats,
      api: this.api,
      s2xx: this.s2xx,
      s3xx: this.s3xx,
      s4xx: this.s4xx,
      s5xx: this.s5xx,
      latencyMsSum: this.latencyMsSum,
      aborted: this.aborted,
      closed: this.closed,
      inFlight: this.inFlight,
      connections: this.sockets.size,
    };
    this.s2xx = this.s3xx = this.s4xx = this.s5xx = this.latencyMsSum = this.aborted = this.closed = 0;
    try {
      this.reportFn(message);
    } catch (err) {
      this.log.warn({ err }, 'direct connection stats not reported');
    }
  }

  /** Counts a finished direct request (module-level listener below: no closure per request). */
  finished(res: DirectResponse): void {
    this.inFlight--;
    this.changed = true;
    const socket = res[kSocket];
    socket[kBusy] = false;
    socket[kIdleSince] = this.now();
    // The gateway's counters follow within ~100 ms under load, at once after a quiet spell.
    const sinceReport = this.now() - this.lastReportMs;
    if (sinceReport >= REPORT_SOON_MS) this.reportSoon();
    else if (this.trailingReport === undefined) {
      this.trailingReport = setTimeout(() => {
        this.trailingReport = undefined;
        this.flushReport();
      }, REPORT_SOON_MS - sinceReport);
      this.trailingReport.unref();
    }
    if (!res.headersSent) {
      this.aborted++;
      return;
    }
    const status = res.statusCode;
    if (status < 300) this.s2xx++;
    else if (status < 400) this.s3xx++;
    else if (status < 500) this.s4xx++;
    else this.s5xx++;
    this.latencyMsSum += this.now() - res[kStart];
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket as DirectSocket;
    const route = socket[kRoute];
    if (socket[kShed]) res.shouldKeepAlive = false;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (route === undefined || !route.paths.includes(path)) return this.sendBack(req, res, route);
    const r = res as DirectResponse;
    r[kStart] = this.now();
    r[kOwner] = this;
    r[kSocket] = socket;
    socket[kBusy] = true;
    this.inFlight++;
    this.changed = true;
    res.once('close', onDirectClose);
    const query = q === -1 ? '' : url.slice(q);
    req.url = req.method === 'POST' ? `/predict${query}` : `/${query}`;
    // What the gateway adds on the proxy path, so a predictor sees the same headers either way.
    const headers = req.headers;
    const client = socket.remoteAddress ?? '';
    const forwarded = headers['x-forwarded-for'];
    headers['x-forwarded-for'] = forwarded === undefined || forwarded === '' ? client : `${forwarded}, ${client}`;
    if (headers['x-request-id'] === undefined) headers['x-request-id'] = randomUUID();
    this.options.handle(req, res);
  }

  /**
   * A request on a direct connection for a path that is not this API's: passed through the gateway
   * (where the client connected), which answers it as any request, and counts it itself.
   */
  private sendBack(req: IncomingMessage, res: ServerResponse, route: DirectRoute | undefined): void {
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    const socket = req.socket as DirectSocket;
    socket[kBusy] = true;
    res.once('close', () => {
      socket[kBusy] = false;
      socket[kIdleSince] = this.now();
    });
    this.backAgent ??= new Agent({ keepAlive: true, maxSockets: 256, timeout: 4000 });
    const headers: string[] = [];
    const raw = req.rawHeaders;
    let forwarded = '';
    for (let i = 0; i < raw.length; i += 2) {
      const lower = raw[i].toLowerCase();
      if (HOP_REQUEST.has(lower) || lower === VIA_REPLICA_HEADER) continue;
      if (lower === 'x-forwarded-for') {
        forwarded = forwarded === '' ? raw[i + 1] : `${forwarded}, ${raw[i + 1]}`;
        continue;
      }
      headers.push(raw[i], raw[i + 1]);
    }
    const client = socket.remoteAddress ?? '';
    headers.push('x-forwarded-for', forwarded === '' ? client : `${forwarded}, ${client}`, VIA_REPLICA_HEADER, '1');
    const upstream = request({
      host: route.back.host,
      port: route.back.port,
      method: req.method,
      path: req.url,
      headers,
      agent: this.backAgent,
    });
    upstream.on('response', (up) => {
      const out: string[] = [];
      const rh = up.rawHeaders;
      for (let i = 0; i < rh.length; i += 2) if (!HOP_RESPONSE.has(rh[i].toLowerCase())) out.push(rh[i], rh[i + 1]);
      res.writeHead(up.statusCode ?? 502, out);
      up.pipe(res);
      up.on('error', () => res.destroy());
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const body = JSON.stringify({ error: `the gateway could not be reached for ${req.url ?? '/'} (${err.code ?? err.message})` });
      res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }
}

/** Resolves when the `done` handed to `register` is called, or after `ms`, whichever comes first. */
export function doneOrTimeout(ms: number, register: (done: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    register(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** What `onDirectMessage` drives: the replica. */
export interface DirectConnectionTarget {
  adoptConnection(socket: Socket, head: Buffer, route: DirectRoute): void;
  shedDirect(keep: number): void;
  revokeDirect(generation: number): void;
}

/**
 * Applies one IPC message from the daemon (`process.on('message', (m, handle) => …)`) to `target`:
 * a handed connection (with its socket as `handle`) or a shed request. Returns false for any other
 * message. A connection message without a socket, or when there is no target yet, closes what came.
 */
export function onDirectMessage(target: DirectConnectionTarget | undefined, message: unknown, handle: unknown): boolean {
  if (isConnectionMessage(message)) {
    const socket = handle as Socket | undefined;
    if (socket === undefined || socket === null || typeof socket.unshift !== 'function') return true;
    if (target === undefined) socket.destroy();
    else target.adoptConnection(socket, Buffer.from(message.head, 'latin1'), message.route);
    return true;
  }
  if (isShedMessage(message)) {
    target?.shedDirect(message.keep);
    return true;
  }
  if (isRevokeMessage(message)) {
    target?.revokeDirect(message.generation);
    return true;
  }
  return false;
}

/** A route whose paths are no longer this replica's to answer: everything goes back through the gateway. */
function revoked(route: DirectRoute): DirectRoute {
  return { ...route, paths: [] };
}

function onDirectClose(this: DirectResponse): void {
  this[kOwner].finished(this);
}
