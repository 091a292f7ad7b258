import { request, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../../core/ports/logger.js';
import type { ApiRequestStats, UpstreamErrorKind } from './api-request-stats.js';
import type { ColdStartHold, HeldRequest } from './cold-start-hold.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './proxy-headers.js';
import type { Upstream } from './upstream.js';
import type { UpstreamPool } from './upstream-pool.js';

/** What forwarding one request needs from the gateway. */
export interface ForwardContext {
  readonly api: string;
  readonly pool: UpstreamPool;
  readonly stats: ApiRequestStats;
  /** A connection not established after this long counts as refused (nothing was sent), ms. */
  readonly connectTimeoutMs: number;
  /** A replica that refused a connection is tried last for this long, ms. */
  readonly ejectMs: number;
  /** `networking.maxBodyBytes`: a body passing it (chunked, or longer than declared) is answered 413 by the gateway. */
  readonly maxBodyBytes: number;
  /**
   * Up to this many body bytes are kept until the replica's response head arrives, so a request whose
   * reused keep-alive connection was reset before any response byte can be replayed on a fresh one.
   * A longer body is not replayable: such a reset is 502.
   */
  readonly replayBodyBytes: number;
  /** Set for an API that may scale to zero: a request finding no ready replica waits here instead of a 503. */
  readonly hold?: ColdStartHold;
  readonly log: Logger;
}

/** Answers with a small JSON error; `retryAfterS` adds `Retry-After`. */
export function sendJsonError(res: ServerResponse, status: number, error: string, retryAfterS?: number): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error });
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  };
  if (retryAfterS !== undefined) headers['retry-after'] = retryAfterS;
  res.writeHead(status, headers);
  res.end(body);
}

/** The peer closed or reset the connection (what a keep-alive socket the replica was closing gives). */
function isConnectionReset(err: NodeJS.ErrnoException): boolean {
  return err.code === 'ECONNRESET' || err.code === 'EPIPE';
}

/** The `kind` a connection failure before anything was sent counts under (`myelin_gateway_upstream_errors_total`). */
function connectErrorKind(err: NodeJS.ErrnoException): UpstreamErrorKind {
  if (err.code === 'ETIMEDOUT') return 'connect_timeout';
  if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') return 'connect_refused';
  return 'connect_error';
}

function isConnectRefusal(err: NodeJS.ErrnoException): boolean {
  const c = err.code;
  return c === 'ECONNREFUSED' || c === 'ENOENT' || c === 'EHOSTUNREACH' || c === 'ENETUNREACH' || c === 'ETIMEDOUT';
}

/*
 * Hot path. The listeners below are module-level functions that find their request's state through a
 * symbol property on the emitter (`this`), the way Node's own http code does: no closures are created
 * per request. (Under tsx every function expression also costs a `__name` defineProperty call, which
 * showed up in profiles.)
 */
const kExchange = Symbol('myelin.gateway.exchange');
interface Carrier {
  [kExchange]?: Exchange;
}
const exchangeOf = (emitter: object): Exchange | undefined => (emitter as Carrier)[kExchange];
const attach = (emitter: object, ex: Exchange | undefined): void => {
  (emitter as Carrier)[kExchange] = ex;
};

/** State of one client request while it is being forwarded (one attempt at a time). */
class Exchange implements HeldRequest {
  readonly ctx: ForwardContext;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly upstreamPath: string;
  readonly startMs: number;
  readonly headers: string[];
  /** Replicas this request failed to connect to. */
  tried: Upstream[] | null = null;
  lastConnectError: NodeJS.ErrnoException | null = null;
  /** The current attempt: its replica (null once released) and its request. */
  upstream: Upstream | null = null;
  upReq: ClientRequest | null = null;
  upRes: IncomingMessage | null = null;
  /** The first byte of the current attempt was handed to its socket: no retry from here on (but the keep-alive replay). */
  sent = false;
  connectTimer: NodeJS.Timeout | null = null;
  /** The client's response is closed (finished or abandoned). */
  finished = false;
  /** The body listeners are on `req` (the first attempt was sent). */
  bodyStarted = false;
  /** The client's body has ended. */
  clientEnded = false;
  /** Body bytes received from the client so far. */
  bodyBytes = 0;
  /** The body received so far, while it is replayable (at most `ctx.replayBodyBytes`); null once it is not. */
  replay: Buffer[] | null = [];
  /** The current attempt runs on a fresh connection outside the keep-alive pool (the replay after a reset). */
  fresh = false;
  /** A reset keep-alive connection was already replayed once (bounded: a second reset is 502). */
  replayed = false;
  /** The replica's failure after the request was sent is counted (once, whichever event reports it first). */
  failureCounted = false;
  /** When the request was first held for a ready replica (`performance.now()`); -1 if never. */
  heldSinceMs = -1;
  /** Withdraws the request from the hold while it waits there; null otherwise. */
  withdraw: (() => void) | null = null;

  constructor(ctx: ForwardContext, req: IncomingMessage, res: ServerResponse, upstreamPath: string, startMs: number, dropApiKeys: boolean) {
    this.ctx = ctx;
    this.req = req;
    this.res = res;
    this.upstreamPath = upstreamPath;
    this.startMs = startMs;
    this.headers = upstreamRequestHeaders(req.rawHeaders, req.socket.remoteAddress, dropApiKeys);
  }

  attempt(): void {
    const ctx = this.ctx;
    const picked = ctx.pool.pick(performance.now(), this.tried);
    if (typeof picked === 'string') {
      if (this.tried === null && ctx.hold !== undefined && this.shouldHold(picked, ctx.hold) && this.holdForReplica(ctx.hold)) return;
      if (this.tried !== null) {
        ctx.stats.unavailable.unreachable++;
        const code = this.lastConnectError?.code ?? 'connect failed';
        sendJsonError(this.res, 503, `no replica of ${ctx.api} accepted the connection (${code})`, 1);
      } else if (picked === 'none') {
        ctx.stats.unavailable.no_ready++;
        sendJsonError(this.res, 503, `no ready replicas for ${ctx.api}`, 1);
      } else {
        ctx.stats.unavailable.saturated++;
        sendJsonError(this.res, 503, `every ready replica of ${ctx.api} is at max_replica_concurrency (${ctx.pool.maxConcurrency})`, 1);
      }
      return;
    }
    if (this.tried !== null) ctx.stats.retriesBy.connect_failed++;
    this.start(picked, false);
  }

  /**
   * Whether a request of an API that may scale to zero waits in its hold rather than getting 503: when
   * no replica is ready; and when every ready one is at max_replica_concurrency while the request was
   * held already (released to a replica that filled up meanwhile) or others are still held (it queues
   * behind them). So a burst held at zero is served in order as replicas start and slots free up.
   */
  private shouldHold(picked: 'none' | 'full', hold: ColdStartHold): boolean {
    return picked === 'none' || this.heldSinceMs >= 0 || hold.size > 0;
  }

  /**
   * No replica can take the request and the API may scale to zero: wait in the hold (cold-start-hold.ts). True when
   * the request is held or answered (the hold is full: 503); false when the hold is closed.
   */
  private holdForReplica(hold: ColdStartHold): boolean {
    const now = performance.now();
    if (this.heldSinceMs < 0) this.heldSinceMs = now;
    const withdraw = hold.hold(this, now - this.heldSinceMs);
    if (withdraw !== false) {
      this.withdraw = withdraw;
      this.ctx.stats.held++;
      return true;
    }
    if (hold.size < hold.maxHeld) return false;
    this.ctx.stats.unavailable.hold_full++;
    sendJsonError(this.res, 503, `${this.ctx.api} has no ready replica and already holds ${hold.maxHeld} requests waiting for one (max_held_requests)`, 1);
    return true;
  }

  /** From the hold: a replica is ready, try again. */
  resume(): void {
    this.leaveHold();
    if (!this.finished) this.attempt();
  }

  /** From the hold: no replica in time (or the route went away). */
  expire(message: string): void {
    this.leaveHold();
    if (this.finished) return;
    this.ctx.stats.unavailable.hold_timeout++;
    sendJsonError(this.res, 503, message, 1);
  }

  /** Out of the hold (released, expired or withdrawn). */
  leaveHold(): void {
    if (this.withdraw === null) return;
    this.withdraw = null;
    this.ctx.stats.held--;
  }

  /**
   * The reused keep-alive connection of the current attempt was reset before any response byte: the
   * replica closed an idle connection as the request went out (the keep-alive race), so it did not
   * handle it. Replays the request once on a fresh connection, on another replica when one takes it.
   */
  replayAfterReset(failed: Upstream): void {
    this.replayed = true;
    this.ctx.stats.retriesBy.keepalive_reset++;
    const exclude = this.tried === null ? [failed] : [...this.tried, failed];
    const picked = this.ctx.pool.pick(performance.now(), exclude);
    // The same replica on a new connection when no other one takes it (its slot was just released).
    this.start(typeof picked === 'string' ? failed : picked, true);
  }

  private start(picked: Upstream, fresh: boolean): void {
    picked.acquire();
    this.upstream = picked;
    this.sent = false;
    this.fresh = fresh;
    let upReq: ClientRequest;
    try {
      upReq = request({
        // A fresh connection bypasses the pool: every idle socket in it may be one the replica is closing.
        agent: fresh ? false : picked.agent,
        host: picked.host,
        port: picked.port,
        socketPath: picked.socketPath,
        method: this.req.method,
        path: this.upstreamPath,
        headers: this.headers,
        setHost: false,
      });
    } catch (err) {
      // A header Node's parser let in but its client refuses (e.g. a control character): the client's fault.
      this.release();
      const e = err as NodeJS.ErrnoException;
      sendJsonError(this.res, 400, `request cannot be forwarded: ${e.message}`);
      return;
    }
    this.upReq = upReq;
    attach(upReq, this);
    upReq.on('socket', onUpstreamSocket);
    upReq.on('drain', onUpstreamDrain);
    upReq.on('response', onUpstreamResponse);
    upReq.on('error', onUpstreamError);
    upReq.on('close', onUpstreamClose);
  }

  /** The upstream socket is connected: start streaming the client's body into the upstream request. */
  send(): void {
    this.clearConnectTimer();
    if (this.finished) return;
    this.sent = true;
    const req = this.req;
    const upReq = this.upReq as ClientRequest;
    if (this.bodyStarted) {
      // A replay: what the client sent so far, then the rest as it comes.
      for (const chunk of this.replay as Buffer[]) upReq.write(chunk);
      if (this.clientEnded) upReq.end();
      else req.resume();
      return;
    }
    this.bodyStarted = true;
    if (req.complete && req.readableLength === 0) {
      // Body already fully read by the parser and empty (GET, or nothing sent yet to buffer): just end.
      this.clientEnded = true;
      upReq.end();
      return;
    }
    attach(req, this);
    req.on('data', onClientData);
    req.on('end', onClientEnd);
  }

  /** The body passed `maxBodyBytes`: stop reading it, abort the upstream request, answer 413 and close. */
  refuseBody(): void {
    const req = this.req;
    req.off('data', onClientData);
    req.off('end', onClientEnd);
    req.pause();
    this.replay = null;
    const upReq = this.upReq;
    this.upReq = null;
    this.clearConnectTimer();
    this.release();
    upReq?.destroy();
    if (this.res.headersSent) {
      // The replica answered before the body was over: cut its response (it was answering a truncated body).
      if (!this.res.writableEnded) this.res.destroy();
      return;
    }
    // The rest of the body is not read: close the connection after the answer, as the replica does.
    this.res.setHeader('connection', 'close');
    sendJsonError(this.res, 413, `request body exceeds ${this.ctx.maxBodyBytes} bytes`);
  }

  clearConnectTimer(): void {
    if (this.connectTimer !== null) {
      clearTimeout(this.connectTimer);
      this.connectTimer = null;
    }
  }

  /** Counts the replica failing after the request was sent (`failed`), once per request. */
  countFailure(): void {
    if (this.failureCounted) return;
    this.failureCounted = true;
    this.ctx.stats.upstreamErrors.failed++;
  }

  /** The current attempt is over for its replica's outstanding count; a request held for a slot may take it. */
  release(): void {
    const up = this.upstream;
    if (up !== null) {
      this.upstream = null;
      up.release();
      const hold = this.ctx.hold;
      if (hold !== undefined && hold.size > 0) hold.wake();
    }
  }
}

function onUpstreamSocket(this: ClientRequest, socket: Socket): void {
  const ex = exchangeOf(this);
  if (ex === undefined || ex.upReq !== this) return;
  if (!socket.connecting) {
    ex.send();
    return;
  }
  ex.connectTimer = setTimeout(onConnectTimeout, ex.ctx.connectTimeoutMs, this);
  attach(socket, ex);
  socket.once('connect', onUpstreamConnect);
}

function onUpstreamConnect(this: Socket): void {
  const ex = exchangeOf(this);
  // The socket outlives the request (keep-alive): drop the reference so it does not retain the exchange.
  attach(this, undefined);
  if (ex !== undefined && ex.upReq !== null && ex.upReq.socket === this) ex.send();
}

function onConnectTimeout(upReq: ClientRequest): void {
  const ex = exchangeOf(upReq);
  if (ex === undefined) return;
  ex.connectTimer = null;
  const err: NodeJS.ErrnoException = new Error(`connect to replica timed out after ${ex.ctx.connectTimeoutMs} ms`);
  err.code = 'ETIMEDOUT';
  upReq.destroy(err);
}

function onClientData(this: IncomingMessage, chunk: Buffer): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  ex.bodyBytes += chunk.length;
  if (ex.bodyBytes > ex.ctx.maxBodyBytes) {
    ex.refuseBody();
    return;
  }
  const replay = ex.replay;
  if (replay !== null) {
    if (ex.bodyBytes <= ex.ctx.replayBodyBytes) replay.push(chunk);
    else ex.replay = null;
  }
  const upReq = ex.upReq;
  if (upReq === null || upReq.destroyed) return;
  if (!upReq.write(chunk)) this.pause();
}

function onUpstreamDrain(this: ClientRequest): void {
  exchangeOf(this)?.req.resume();
}

function onClientEnd(this: IncomingMessage): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  ex.clientEnded = true;
  const upReq = ex.upReq;
  if (upReq !== null && !upReq.destroyed) upReq.end();
}

function onUpstreamResponse(this: ClientRequest, upRes: IncomingMessage): void {
  const ex = exchangeOf(this);
  if (ex === undefined || ex.finished || ex.upReq !== this) {
    upRes.resume();
    return;
  }
  ex.upRes = upRes;
  // A response byte arrived: the request is never replayed from here on.
  ex.replay = null;
  const res = ex.res;
  try {
    // writeHead only stores the head; it leaves with the first body chunk in one write.
    res.writeHead(upRes.statusCode ?? 502, clientResponseHeaders(upRes.rawHeaders));
  } catch (err) {
    // A response head Node refuses to write (invalid header): never let it escape as an uncaught exception.
    ex.ctx.stats.upstreamErrors.bad_response++;
    ex.ctx.log.warn({ api: ex.ctx.api, replica: ex.upstream?.id, err }, 'replica response head cannot be forwarded');
    upRes.resume();
    sendJsonError(res, 502, `replica response of ${ex.ctx.api} cannot be forwarded: ${(err as Error).message}`);
    return;
  }
  attach(upRes, ex);
  res.on('drain', onClientDrain);
  upRes.on('data', onUpstreamData);
  upRes.on('end', onUpstreamEnd);
  // The replica dropped the connection mid-body: end the client's response abruptly as well.
  upRes.on('error', onUpstreamResponseError);
}

function onUpstreamData(this: IncomingMessage, chunk: Buffer): void {
  const ex = exchangeOf(this);
  if (ex !== undefined && !ex.res.write(chunk)) this.pause();
}

function onClientDrain(this: ServerResponse): void {
  exchangeOf(this)?.upRes?.resume();
}

function onUpstreamEnd(this: IncomingMessage): void {
  exchangeOf(this)?.res.end();
}

function onUpstreamResponseError(this: IncomingMessage): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  ex.countFailure();
  ex.res.destroy();
}

function onUpstreamError(this: ClientRequest, err: NodeJS.ErrnoException): void {
  const ex = exchangeOf(this);
  if (ex === undefined || ex.upReq !== this) return;
  ex.clearConnectTimer();
  if (ex.finished) return;
  // The replica answered in full before the connection failed (e.g. an early 413 while the body was
  // still being sent, then a close): its answer stands.
  if (ex.upRes !== null && ex.upRes.complete) return;
  const up = ex.upstream;
  if (ex.sent && up !== null && ex.upRes === null && !ex.fresh && !ex.replayed && this.reusedSocket && ex.replay !== null && isConnectionReset(err)) {
    ex.ctx.stats.upstreamErrors.keepalive_reset++;
    ex.release();
    ex.upReq = null;
    // No more body until the replay's connection is up (the buffered part is replayed first).
    ex.req.pause();
    if (ex.ctx.log.isLevelEnabled('debug')) {
      ex.ctx.log.debug({ api: ex.ctx.api, replica: up.id, code: err.code }, 'reused replica connection reset before any response, replaying');
    }
    ex.replayAfterReset(up);
    return;
  }
  if (!ex.sent && up !== null) {
    // Nothing of the request reached the replica and the body is unread: try another one (each once).
    ex.ctx.stats.upstreamErrors[connectErrorKind(err)]++;
    if (isConnectRefusal(err)) up.ejectedUntilMs = performance.now() + ex.ctx.ejectMs;
    ex.lastConnectError = err;
    (ex.tried ??= []).push(up);
    ex.release();
    ex.upReq = null;
    if (ex.ctx.log.isLevelEnabled('debug')) {
      ex.ctx.log.debug({ api: ex.ctx.api, replica: up.id, code: err.code }, 'replica connect failed, retrying elsewhere');
    }
    ex.attempt();
    return;
  }
  ex.countFailure();
  ex.ctx.log.warn({ api: ex.ctx.api, replica: up?.id, err }, 'replica failed while handling a request');
  if (!ex.res.headersSent) {
    sendJsonError(ex.res, 502, `replica ${up?.id ?? '?'} of ${ex.ctx.api} failed while handling the request (${err.code ?? err.message})`);
  } else {
    ex.res.destroy();
  }
}

function onUpstreamClose(this: ClientRequest): void {
  const ex = exchangeOf(this);
  if (ex !== undefined && ex.upReq === this) ex.release();
}

function onClientClose(this: ServerResponse): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  ex.finished = true;
  ex.clearConnectTimer();
  // The client left while held: it no longer waits (nor counts as load).
  const withdraw = ex.withdraw;
  if (withdraw !== null) {
    ex.leaveHold();
    withdraw();
  }
  const stats = ex.ctx.stats;
  stats.inFlight--;
  stats.record(this.headersSent ? this.statusCode : 0, performance.now() - ex.startMs);
  // The client left before the response was complete: abort the upstream request too.
  if (!this.writableFinished && ex.upReq !== null) ex.upReq.destroy();
}

/**
 * Forwards one client request to a replica of `ctx.pool` and streams the answer back.
 *
 * - The client body is not read until the upstream socket is connected (a reused keep-alive socket is
 *   connected already). If the connection fails before that — refused, unreachable, or not connected
 *   within `connectTimeoutMs` — nothing of the request reached the replica and the body is still
 *   unread, so the request is retried on another replica, each replica at most once; when every ready
 *   replica failed to connect the answer is 503 with `Retry-After` (safe to retry).
 * - The keep-alive race: when a *reused* pooled connection is reset (`ECONNRESET`/`EPIPE`) before any
 *   response byte, the replica closed it as the request went out and did not handle it. The request
 *   is replayed once on a fresh connection (another replica when one takes it, else the same), if its
 *   body so far fits in `ctx.replayBodyBytes` (kept until the response head arrives).
 * - Otherwise, once the first byte was handed to the upstream socket there is no retry (predictions are
 *   not idempotent): a failure before the response head is 502; after it, the client connection is
 *   destroyed so the client sees a truncated response rather than a complete-looking one.
 * - A body passing `ctx.maxBodyBytes` (chunked) is not forwarded further: 413 and close.
 * - Bodies are streamed both ways with backpressure (never buffered whole; at most `replayBodyBytes`
 *   are kept for the replay).
 * - When the client goes away, the upstream request is aborted, so the replica's in-flight count drops.
 * - With `ctx.hold` (an API with `min_replicas: 0`), a request that finds no ready replica waits in the
 *   hold until one can take it (then it is attempted as above), or answers 503 when the hold times out
 *   or is full (cold-start-hold.ts); so does one finding every replica full while requests are held (or
 *   after it was held itself); a client leaving while held is withdrawn.
 * - With `dropApiKeys` (the route's API key was checked), `authorization` and `x-api-key` stay here.
 * - `upstreamPath` is `/predict?…` for POST and `/?…` for GET (Cortex's rewrite); headers other than
 *   hop-by-hop ones pass through unchanged (see `proxy-headers.ts`).
 *
 * `startMs` is the arrival time on `performance.now()`; stats are recorded when the response closes.
 */
export function forwardRequest(
  ctx: ForwardContext,
  req: IncomingMessage,
  res: ServerResponse,
  upstreamPath: string,
  startMs: number,
  dropApiKeys = false,
): void {
  ctx.stats.inFlight++;
  const ex = new Exchange(ctx, req, res, upstreamPath, startMs, dropApiKeys);
  attach(res, ex);
  res.on('close', onClientClose);
  ex.attempt();
}
